# The client checklist with Perl's Redis module (Debian's libredis-perl), as its documentation shows it:
# Redis->new(server => "host:port").
# usage: perl checklist.pl PORT PREFIX
# Prints "CHECKLIST OK" when every step passed; any failure dies (non-zero exit).
use strict;
use warnings;
use Redis;

my ($port, $prefix) = @ARGV;
sub k { "$prefix:$_[0]" }
sub check { die "check failed: $_[1]\n" unless $_[0] }

my $r = Redis->new(server => "127.0.0.1:$port", encoding => undef);
check($r->ping eq 'PONG', 'ping');
check($r->set(k('s'), 'v') eq 'OK', 'set');
check($r->get(k('s')) eq 'v', 'get');
my $blob = join('', map { chr } 0 .. 255) x 4;
$r->set(k('bin'), $blob);
check($r->get(k('bin')) eq $blob, 'binary');
check($r->incr(k('n')) == 1, 'incr');
check($r->expire(k('s'), 100) == 1, 'expire');
my $ttl = $r->ttl(k('s'));
check($ttl >= 99 && $ttl <= 100, "ttl $ttl");
my @keys = map { k("m$_") } 0 .. 49;
check($r->mset(map { ($keys[$_], "v$_") } 0 .. 49) eq 'OK', 'mset');
my @values = $r->mget(@keys);
check(join(',', @values) eq join(',', map { "v$_" } 0 .. 49), 'mget');
check($r->del(@keys) == 50, 'del');
# Pipelining: commands with a callback are sent without waiting; wait_all_responses collects them.
my @results;
$r->incr(k('p'), sub { push @results, $_[0] }) for 1 .. 1000;
$r->wait_all_responses;
check(@results == 1000 && $results[-1] == 1000, 'pipeline');
$r->hset(k('h'), 'a', '1');
$r->hset(k('h'), 'b', '2');
my %h = $r->hgetall(k('h'));
check(join(',', map { "$_=$h{$_}" } sort keys %h) eq 'a=1,b=2', 'hgetall');
$r->sadd(k('set'), qw(x y z));
check(join(',', sort $r->smembers(k('set'))) eq 'x,y,z', 'smembers');
$r->zadd(k('z'), 1.5, 'one', 2.25, 'two');
check(join(',', $r->zrange(k('z'), 0, -1, 'WITHSCORES')) eq 'one,1.5,two,2.25', 'zrange withscores');
$r->set(k("scan:$_"), '1', sub { }) for 0 .. 999;
$r->wait_all_responses;
my ($cursor, %seen, $total) = (0);
do {
    my ($next, $batch) = $r->scan($cursor, 'MATCH', k('scan:*'), 'COUNT', 100);
    $cursor = $next;
    $seen{$_}++ for @$batch;
    $total += @$batch;
} while ($cursor ne '0');
check($total == 1000 && keys(%seen) == 1000, "scan $total");
my $info = $r->info;
check(defined $info->{redis_version} && defined $info->{connected_clients}, 'info');
check($r->client_setname('checklist') eq 'OK', 'setname');
check($r->client_getname eq 'checklist', 'getname');
eval { $r->nosuchcommand('x'); 1 } and die "unknown command succeeded\n";
check($@ =~ /unknown command/, "unknown command error: $@");
check($r->ping eq 'PONG', 'ping after error');
eval { $r->lpush(k('s'), 'x'); 1 } and die "WRONGTYPE succeeded\n";
check($@ =~ /WRONGTYPE/, "wrongtype error: $@");
check($r->get(k('s')) eq 'v', 'usable after WRONGTYPE');
$r->quit;
print "CHECKLIST OK\n";
