// Branch for short texts: the whole text is its own summary.
import { defineFunction } from 'baton/sdk';

export default defineFunction((req, ctx) => ctx.json({ branch: 'short', summary: req.text().trim() }));
