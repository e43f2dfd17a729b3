// Step 2: answers the client with the greeting in capitals.
import { defineFunction } from 'baton/sdk';

export default defineFunction((req, ctx) => {
  const { greeting } = req.json<{ greeting: string }>();
  return ctx.text(`${greeting.toUpperCase()}!\n`);
});
