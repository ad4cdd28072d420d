<?php
// The client checklist with phpredis (Debian's php-redis), as its README shows it: new Redis(),
// connect(host, port).
// usage: php checklist.php PORT PREFIX
// Prints "CHECKLIST OK" when every step passed; any failure exits non-zero.
error_reporting(E_ALL);
set_error_handler(function ($no, $msg) { fwrite(STDERR, "warning: $msg\n"); exit(1); });
[$_, $port, $prefix] = $argv;
function k($name) { global $prefix; return "$prefix:$name"; }
function check($cond, $what) { if (!$cond) { fwrite(STDERR, "check failed: $what\n"); exit(1); } }

$r = new Redis();
check($r->connect('127.0.0.1', (int)$port), 'connect');
check($r->ping() === true || $r->ping() === '+PONG', 'ping');
check($r->set(k('s'), 'v') === true, 'set');
check($r->get(k('s')) === 'v', 'get');
$blob = str_repeat(implode('', array_map('chr', range(0, 255))), 4);
$r->set(k('bin'), $blob);
check($r->get(k('bin')) === $blob, 'binary');
check($r->incr(k('n')) === 1, 'incr');
check($r->expire(k('s'), 100) === true, 'expire');
$ttl = $r->ttl(k('s'));
check($ttl >= 99 && $ttl <= 100, "ttl $ttl");
$pairs = [];
for ($i = 0; $i < 50; $i++) { $pairs[k("m$i")] = "v$i"; }
check($r->mset($pairs) === true, 'mset');
check($r->mget(array_keys($pairs)) === array_values($pairs), 'mget');
check($r->del(array_keys($pairs)) === 50, 'del');
$p = $r->pipeline();
for ($i = 0; $i < 1000; $i++) { $p->incr(k('p')); }
$results = $p->exec();
check(count($results) === 1000 && $results[999] === 1000, 'pipeline');
$r->hMSet(k('h'), ['a' => '1', 'b' => '2']);
$h = $r->hGetAll(k('h'));
ksort($h);
check($h === ['a' => '1', 'b' => '2'], 'hgetall');
$r->sAdd(k('set'), 'x', 'y', 'z');
$members = $r->sMembers(k('set'));
sort($members);
check($members === ['x', 'y', 'z'], 'smembers');
$r->zAdd(k('z'), 1.5, 'one', 2.25, 'two');
check($r->zRange(k('z'), 0, -1, true) === ['one' => 1.5, 'two' => 2.25], 'zrange withscores');
$p = $r->pipeline();
for ($i = 0; $i < 1000; $i++) { $p->set(k("scan:$i"), '1'); }
$p->exec();
$r->setOption(Redis::OPT_SCAN, Redis::SCAN_RETRY);
$seen = [];
$it = null;
while (($keys = $r->scan($it, k('scan:*'), 100)) !== false) {
    foreach ($keys as $key) { $seen[] = $key; }
}
check(count($seen) === 1000 && count(array_unique($seen)) === 1000, 'scan ' . count($seen));
$info = $r->info();
check(isset($info['redis_version']) && isset($info['connected_clients']), 'info');
check($r->client('setname', 'checklist') === true, 'setname');
check($r->client('getname') === 'checklist', 'getname');
check($r->rawCommand('NOSUCHCOMMAND', 'x') === false, 'unknown command fails');
check(strpos($r->getLastError(), 'unknown command') !== false, 'unknown command error: ' . $r->getLastError());
$r->clearLastError();
check($r->ping() === true || $r->ping() === '+PONG', 'ping after error');
check($r->lPush(k('s'), 'x') === false, 'WRONGTYPE fails');
check(strpos($r->getLastError(), 'WRONGTYPE') === 0, 'wrongtype error: ' . $r->getLastError());
check($r->get(k('s')) === 'v', 'usable after WRONGTYPE');
$r->close();
echo "CHECKLIST OK\n";
