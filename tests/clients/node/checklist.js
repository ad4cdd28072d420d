// The client checklist with node-redis (Debian's node-redis, v4: RESP2), as its README shows it:
// createClient({ url }), connect(), commands as camelCase methods.
// usage: node checklist.js PORT PREFIX   (NODE_PATH=/usr/share/nodejs for Debian's package)
// Prints "CHECKLIST OK" when every step passed; any failure exits non-zero.
const assert = require('assert');
const { createClient, commandOptions } = require('redis');

const [port, prefix] = process.argv.slice(2);
const k = (name) => `${prefix}:${name}`;

(async () => {
  const r = createClient({ url: `redis://127.0.0.1:${port}` });
  r.on('error', (e) => { console.error('client error', e); process.exit(1); });
  await r.connect();
  assert.strictEqual(await r.ping(), 'PONG');
  assert.strictEqual(await r.set(k('s'), 'v'), 'OK');
  assert.strictEqual(await r.get(k('s')), 'v');
  const blob = Buffer.alloc(1024, 0).map((_, i) => i % 256);
  await r.set(k('bin'), blob);
  assert.ok(blob.equals(await r.get(commandOptions({ returnBuffers: true }), k('bin'))));
  assert.strictEqual(await r.incr(k('n')), 1);
  assert.strictEqual(await r.expire(k('s'), 100), true);
  const ttl = await r.ttl(k('s'));
  assert.ok(ttl >= 99 && ttl <= 100, `ttl ${ttl}`);
  const keys = Array.from({ length: 50 }, (_, i) => k(`m${i}`));
  assert.strictEqual(await r.mSet(keys.map((key, i) => [key, `v${i}`])), 'OK');
  assert.deepStrictEqual(await r.mGet(keys), keys.map((_, i) => `v${i}`));
  assert.strictEqual(await r.del(keys), 50);
  const pipeline = r.multi();
  for (let i = 0; i < 1000; i++) pipeline.incr(k('p'));
  const results = await pipeline.execAsPipeline();
  assert.strictEqual(results.length, 1000);
  assert.strictEqual(results[999], 1000);
  await r.hSet(k('h'), { a: '1', b: '2' });
  assert.deepStrictEqual({ ...(await r.hGetAll(k('h'))) }, { a: '1', b: '2' });
  await r.sAdd(k('set'), ['x', 'y', 'z']);
  assert.deepStrictEqual((await r.sMembers(k('set'))).sort(), ['x', 'y', 'z']);
  await r.zAdd(k('z'), [{ score: 1.5, value: 'one' }, { score: 2.25, value: 'two' }]);
  assert.deepStrictEqual(await r.zRangeWithScores(k('z'), 0, -1), [{ value: 'one', score: 1.5 }, { value: 'two', score: 2.25 }]);
  const scanKeys = Array.from({ length: 1000 }, (_, i) => k(`scan:${i}`));
  await Promise.all(scanKeys.map((key) => r.set(key, '1')));
  const seen = [];
  for await (const key of r.scanIterator({ MATCH: k('scan:*'), COUNT: 100 })) seen.push(key);
  assert.strictEqual(seen.length, 1000);
  assert.strictEqual(new Set(seen).size, 1000);
  const info = await r.info();
  assert.ok(/^redis_version:/m.test(info), info);
  assert.strictEqual(await r.clientSetName('checklist'), 'OK');
  assert.strictEqual(await r.clientGetName(), 'checklist');
  await assert.rejects(r.sendCommand(['NOSUCHCOMMAND', 'x']), (e) => e.constructor.name === 'ErrorReply' && /unknown command/.test(e.message));
  assert.strictEqual(await r.ping(), 'PONG');
  await assert.rejects(r.lPush(k('s'), 'x'), (e) => e.constructor.name === 'ErrorReply' && /^WRONGTYPE/.test(e.message));
  assert.strictEqual(await r.get(k('s')), 'v');
  await r.quit();
  console.log('CHECKLIST OK');
})().catch((e) => { console.error(e); process.exit(1); });
