// Runs after either branch: adds which request and path produced the summary.
import { defineFunction } from 'baton/sdk';

export default defineFunction((req, ctx) => ctx.json({ ...req.json<object>(), requestId: req.requestId, path: req.path }));
