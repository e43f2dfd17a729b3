// A chain function for the soak: throws on ?throw=1, exits its process on ?exit=1, otherwise
// passes the payload on.
import { defineFunction } from 'baton/sdk';

export default defineFunction((req) => {
  if (req.query.get('exit')) process.exit(3);
  if (req.query.get('throw')) throw new Error('asked to throw');
});
