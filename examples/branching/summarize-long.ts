// Branch for long texts: the first sentence and the size of the rest.
import { defineFunction } from 'baton/sdk';

export default defineFunction((req, ctx) => {
  const text = req.text().trim();
  const first = /^[^.!?]*[.!?]?/.exec(text)![0];
  return ctx.json({ branch: 'long', summary: first, restChars: text.length - first.length });
});
