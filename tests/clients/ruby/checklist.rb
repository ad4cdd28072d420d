# The client checklist with redis-rb (Debian's ruby-redis), as its README shows it: Redis.new(host:, port:).
# usage: ruby checklist.rb PORT PREFIX
# Prints "CHECKLIST OK" when every step passed; any failure exits non-zero.
require "redis"

port, prefix = ARGV[0].to_i, ARGV[1]
def k(prefix, name) = "#{prefix}:#{name}"
def check(cond, what) = (raise "check failed: #{what}" unless cond)

r = Redis.new(host: "127.0.0.1", port: port)
check(r.ping == "PONG", "ping")
check(r.set(k(prefix, "s"), "v") == "OK", "set")
check(r.get(k(prefix, "s")) == "v", "get")
blob = (0..255).map(&:chr).join.b * 4
r.set(k(prefix, "bin"), blob)
check(r.get(k(prefix, "bin")).b == blob, "binary")
check(r.incr(k(prefix, "n")) == 1, "incr")
check(r.expire(k(prefix, "s"), 100) == true, "expire")
check((99..100).cover?(r.ttl(k(prefix, "s"))), "ttl")
keys = (0...50).map { |i| k(prefix, "m#{i}") }
check(r.mset(*keys.each_with_index.flat_map { |key, i| [key, "v#{i}"] }) == "OK", "mset")
check(r.mget(*keys) == (0...50).map { |i| "v#{i}" }, "mget")
check(r.del(*keys) == 50, "del")
results = r.pipelined { |p| 1000.times { p.incr(k(prefix, "p")) } }
check(results.size == 1000 && results.last == 1000, "pipeline")
r.hset(k(prefix, "h"), "a", "1", "b", "2")
check(r.hgetall(k(prefix, "h")) == { "a" => "1", "b" => "2" }, "hgetall")
r.sadd(k(prefix, "set"), %w[x y z])
check(r.smembers(k(prefix, "set")).sort == %w[x y z], "smembers")
r.zadd(k(prefix, "z"), [[1.5, "one"], [2.25, "two"]])
check(r.zrange(k(prefix, "z"), 0, -1, with_scores: true) == [["one", 1.5], ["two", 2.25]], "zrange withscores")
scan_keys = (0...1000).map { |i| k(prefix, "scan:#{i}") }
r.pipelined { |p| scan_keys.each { |key| p.set(key, "1") } }
seen = r.scan_each(match: k(prefix, "scan:*"), count: 100).to_a
check(seen.size == 1000 && seen.uniq.size == 1000 && seen.sort == scan_keys.sort, "scan #{seen.size}")
info = r.info
check(info.key?("redis_version") && info.key?("connected_clients"), "info")
check(r.call("CLIENT", "SETNAME", "checklist") == "OK", "setname")
check(r.call("CLIENT", "GETNAME") == "checklist", "getname")
begin
  r.call("NOSUCHCOMMAND", "x")
  raise "unknown command succeeded"
rescue Redis::CommandError => e
  check(e.message.include?("unknown command"), e.message)
end
check(r.ping == "PONG", "ping after error")
begin
  r.lpush(k(prefix, "s"), "x")
  raise "WRONGTYPE succeeded"
rescue Redis::CommandError => e
  check(e.message.start_with?("WRONGTYPE"), e.message)
end
check(r.get(k(prefix, "s")) == "v", "usable after WRONGTYPE")
r.close
puts "CHECKLIST OK"
