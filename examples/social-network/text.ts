// Finds the mentions and links in a post's text: shortens the links and resolves the
// mentions, in parallel.
import { defineFunction } from 'baton/sdk';

export default defineFunction(async (req, ctx) => {
  const text = req.text();
  const urls = text.match(/https?:\/\/\S+/g) ?? [];
  const mentions = (text.match(/@[a-z]+/g) ?? []).map((m) => m.slice(1));
  const [short, users] = await Promise.all([ctx.call('url-shorten', urls), ctx.call('user-mention', mentions)]);
  const map = short.json<Record<string, string>>();
  return { text: text.replace(/https?:\/\/\S+/g, (u) => map[u] ?? u), urls: map, mentions: users.json() };
});
