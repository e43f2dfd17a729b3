// Short links: a stable hash of each URL.
import { createHash } from 'node:crypto';
import { defineFunction } from 'baton/sdk';

export default defineFunction((req) =>
  Object.fromEntries(req.json<string[]>().map((u) => [u, `https://b.tn/${createHash('sha1').update(u).digest('base64url').slice(0, 7)}`])),
);
