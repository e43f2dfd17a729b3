// Decides at run time which function runs next: short texts go to 'summarize-short',
// long ones to 'summarize-long' (the chain lists both as the branch after 'triage').
import { defineFunction } from 'baton/sdk';

export default defineFunction((req, ctx) => {
  ctx.next(req.body.length > 200 ? 'summarize-long' : 'summarize-short');
  // returning nothing passes the body on untouched, in place
});
