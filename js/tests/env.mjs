// Where the gateway that `npm run test:js` started lives. Run these files through `npm run test:js`.
import { randomUUID } from 'node:crypto';

export const url = process.env.REDGE_TEST_URL;
export const token = process.env.REDGE_TEST_TOKEN;
if (!url || !token) {
  throw new Error('REDGE_TEST_URL and REDGE_TEST_TOKEN are not set: run the JavaScript suite with `npm run test:js`');
}

/** A URL where nothing listens: every request is refused at once. */
export const deadUrl = 'http://127.0.0.1:9';

/** A key or identifier no other test uses. */
export const unique = (name) => `js-test:${randomUUID()}:${name}`;

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
