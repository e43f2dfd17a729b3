// Handlers tested without a gateway: `baton test` runs this file with node:test.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { invoke } from 'baton/testing';
import greet from '../functions/greet';
import shout from '../functions/shout';

test('greet, then shout', async () => {
  const greeting = await invoke(greet, { body: 'world' });
  assert.deepEqual(greeting.json(), { greeting: 'hello, world' });
  const shouted = await invoke(shout, { body: greeting.body });
  assert.equal(shouted.text(), 'HELLO, WORLD!\n');
});

test('an empty body greets a stranger', async () => {
  assert.deepEqual((await invoke(greet)).json(), { greeting: 'hello, stranger' });
});
