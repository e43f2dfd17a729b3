// The examples a newcomer runs first, served for real.
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadChainFile } from '../src/chain/index.ts';
import { Gateway } from '../src/gateway/index.ts';
import { dataplaneUnavailable } from './helpers/env.ts';
import { EXAMPLES } from './helpers/gateway.ts';

describe.skipIf(dataplaneUnavailable)('examples', () => {
  let gw: Gateway | undefined;
  const start = async (name: string) => {
    gw = await Gateway.start(loadChainFile(path.join(EXAMPLES, name, 'chain.yaml')), {
      port: 0,
      logger: pino({ level: 'silent' }),
    });
    return gw;
  };
  afterEach(() => gw?.stop());

  it('text-pipeline: parse → transform → render counts words', async () => {
    const g = await start('text-pipeline');
    const text = 'the cat and the hat and the bat';
    const json = await fetch(`${g.url}/stats`, { method: 'POST', body: text });
    expect(json.headers.get('content-type')).toBe('application/json');
    expect(await json.json()).toEqual({ words: 8, chars: text.length, distinct: 5, top: { the: 3, and: 2, bat: 1, cat: 1, hat: 1 } });
    const plain = await fetch(`${g.url}/stats?format=text`, { method: 'POST', body: text });
    expect(await plain.text()).toMatch(/^8 words, 5 distinct, 31 characters\n {4}3 {2}the\n/);
  });

  it('social-network: compose-post fans out (text fans out again), then stores and delivers', async () => {
    const g = await start('social-network');
    const draft = { user: 'ada', text: 'hi @grace and @nobody, see https://example.org/a/long/path', media: ['png', 'exe', 'mp4'] };
    const res = await fetch(`${g.url}/compose`, { method: 'POST', body: JSON.stringify(draft), headers: { 'content-type': 'application/json', 'x-baton-timing': '1' } });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { post: { id: string; text: string }; stored: object; timeline: object };
    expect(body.post).toMatchObject({
      author: { id: 1, name: 'ada' },
      media: [{ id: 1, kind: 'png' }, { id: 2, kind: 'mp4' }],
      mentions: [{ name: 'grace', id: 2 }],
      text: expect.stringMatching(/^hi @grace and @nobody, see https:\/\/b\.tn\/\S{7}$/),
    });
    expect(body.stored).toMatchObject({ stored: body.post.id });
    expect(body.timeline).toEqual({ post: body.post.id, delivered: ['grace', 'alan', 'barbara'] });
    for (const fn of ['unique-id', 'user', 'media', 'text', 'url-shorten', 'user-mention', 'post-storage', 'home-timeline']) {
      expect(res.headers.get('server-timing')).toContain(`call-${fn};dur=`);
    }
    const unknown = await fetch(`${g.url}/compose`, { method: 'POST', body: JSON.stringify({ ...draft, user: 'eve' }) });
    expect(unknown.status).toBe(404);
  });

  it('branching: triage picks the branch at run time, label runs after either', async () => {
    const g = await start('branching');
    const short = await (await fetch(`${g.url}/summarize`, { method: 'POST', body: 'Hi there.' })).json();
    expect(short).toMatchObject({ branch: 'short', summary: 'Hi there.', path: '/summarize' });
    const long = 'First sentence here. ' + 'More words follow. '.repeat(20);
    const res = await fetch(`${g.url}/summarize`, { method: 'POST', body: long, headers: { 'x-baton-timing': '1' } });
    expect(res.headers.get('server-timing')).toMatch(/h2-summarize-long;.*h3-label;/);
    expect(await res.json()).toMatchObject({ branch: 'long', summary: 'First sentence here.' });
  });
});

describe.skipIf(dataplaneUnavailable)('heavy-tail example', () => {
  it('runs N units of work per request with the unit from the chain file', async () => {
    const gw = await Gateway.start(loadChainFile(path.join(EXAMPLES, 'heavy-tail', 'chain.yaml')), {
      port: 0,
      logger: pino({ level: 'silent' }),
    });
    try {
      const res = await fetch(`${gw.url}/task?units=20`, { method: 'POST', headers: { 'x-baton-timing': '1' } });
      expect(await res.json()).toMatchObject({ units: 20, ms: 10, mode: 'sleep' });
      expect(res.headers.get('server-timing')).toMatch(/h1-work;dur=(\d+)/);
      const run = Number(/h1-work;dur=([\d.]+)/.exec(res.headers.get('server-timing')!)![1]);
      expect(run).toBeGreaterThanOrEqual(10); // slept 20 × 0.5 ms
      const bad = await fetch(`${gw.url}/task?units=-1`, { method: 'POST' });
      expect(bad.status).toBe(400);
    } finally {
      await gw.stop();
    }
  });
});
