// The demo page: one module per panel, plus the strip of requests. Each panel checks that its routes
// exist (GET /api) and shows "unavailable" instead of breaking when they do not.
import { startCache } from './js/cache.js';
import { startDashboard } from './js/dashboard.js';
import { startHealth } from './js/health.js';
import { startRateLimit } from './js/ratelimit.js';
import { startSession } from './js/session.js';
import { startStrip } from './js/strip.js';

startStrip();
startHealth();
startSession();
startRateLimit();
startCache();
startDashboard();
