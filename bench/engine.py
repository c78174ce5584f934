#!/usr/bin/env python3
"""What a filter costs per request in Kong's real Wasm engine.

Four nginx instances from ../shared/ngx-wasm, identical but for the filter
on their one location: none, the no-op filter, the floor (the host calls
kong_looker makes per request, nothing else) and kong_looker, shipping to
the real collector. Each has one worker pinned to core 0 and its own
upstream server in the same worker, so that all of a request's work is on
that core; wrk, the collector and this script share core 1. The
collector runs at the lowest priority there (`--collector-nice`): its
bursts of work on each batch would otherwise delay wrk, and wrk counts its
own delays as the server's latency (kong_looker's p99 was 2.9 ms, and
1.9 with the collector niced, in two runs minutes apart); in production
the collector runs elsewhere. `--collector-idle` runs it under SCHED_IDLE
instead (no difference seen, bench/RESULTS.md).

It reports, per traffic mix (the reference mix and its high-cardinality
form, from `testsupport/examples/wrk_requests.rs`):
- requests/s at saturation (wrk -t1 -c16, keep-alive), in alternating
  blocks, and the added microseconds per request over each baseline,
  with the worker's CPU per request, the kernel's share of it and the
  requests it serves between sleeps;
- the worker's CPU microseconds per request at a fixed rate, and p99, in
  alternating rounds as well, with its page faults and context switches
  (kernel work that callgrind cannot see), and with `--rate-profile` a
  perf profile of that CPU time by part; arrivals independent of each
  other (`--pacing poisson`, the default) or wrk's connections in step
  (`even`), and the latency percentiles of all rounds pooled;
- each worker's resident memory before and after;
- issue 17's goals, met or not by this run's figures: at most 5 µs over
  the no-op filter (within 2 µs of the floor where the floor is over 5),
  at saturation and in CPU at the fixed rate, and p99 at the fixed rate
  within 10% of the no-op filter's, with kong_looker's time as a share of
  the no-op filter's beside them. Each paired median comes with its 95%
  interval (the sign test's order statistics, whatever the noise's
  shape), and a cost goal is met only when the interval lies within it,
  missed when it lies past it, and undecided when the rounds' spread
  covers the line;
- host calls per request, counted with uprobes on the engine's own
  functions, and the worker's system calls, in all and by name
  (`--count`), and a perf profile of kong_looker's worker
  (`--profile`);
- instead of the timed blocks: each log phase and tick of kong_looker
  timed with uprobes, to find the long ones that hold up queued requests
  (`--stalls`), or instructions per request with nginx under callgrind,
  which do not drift with the machine's load (`--instructions`), with
  its simulated caches' misses (`--cache-sim`).

Each nginx defines `$kong_looker_log` as `kong_looker.nginx.conf` does, so
kong_looker and the floor read nginx's figures in one host call.
`--single-reads` adds the floor and kong_looker again in nginx instances
without it (`floor_single`, `kong_looker_single`), where both read the
figures one by one, as in a Kong without the include. `--sink` answers
kong_looker's batches with a plain nginx instead of the collector, whose
work would otherwise take wrk's core from it (bench/RESULTS.md).
`--control` runs the no-op filter twice, in two nginx: what two identical
servers differ by is the noise against which to read every other figure.
`--spin` keeps the worker's core busy with a loop under SCHED_IDLE, which
runs only while the worker sleeps: at the fixed rate the core then never
halts between requests, which tells what the idle core itself costs
(bench/RESULTS.md).
Bare nginx has no router, so `kong.route_id` finds nothing; `--routes`
puts a filter first in every filtered location that sets it to each
request's route in the mix, so that the filters read a route as in Kong.
Bare nginx also sees every request from 127.0.0.1, where Kong's real-IP
settings give the client's address: each request carries its address
from the mix in a header, which the line's address field reads instead
of `$remote_addr` (`--loopback` for the address as nginx sees it; the
`--single-reads` variants read `$remote_addr` itself, 127.0.0.1). The
high-cardinality mix cycles through 200,000 distinct requests, so that
callers come back as often as the mix has them and not on wrk's cycle.

    python3 bench/engine.py                     # the figures in bench/RESULTS.md
    python3 bench/engine.py --seconds 5 --rounds 1 --mixes reference   # quick
"""

import argparse
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
FILTERS = os.path.join(TARGET, "testkit-filters")
KEY = "engine-bench-signing-key"
VARIANTS = ["none", "noop", "floor", "kong_looker"]
# The variants run in an nginx without `$kong_looker_log` (`--single-reads`).
SINGLE = "_single"
# The variants run in an nginx with the earlier release's `$kong_looker_log`,
# nginx's figures without the request's fields (`--older-line`).
OLDER = "_kl1"
SUFFIXES = (SINGLE, OLDER)
# The no-op filter again in an nginx of its own (`--control`): what two
# identical servers differ by is the bench's noise, the yardstick for every
# other difference.
CONTROL = "noop_again"


def suffix_of(variant):
    """The kind of nginx a variant runs in: '' (this release's include),
    SINGLE or OLDER."""
    return next((x for x in SUFFIXES if variant.endswith(x)), "")


def base_of(variant):
    """The filter a variant runs: floor_single runs the floor."""
    if variant == CONTROL:
        return "noop"
    suffix = suffix_of(variant)
    return variant[:-len(suffix)] if suffix else variant


def floor_of(variant):
    """The floor a variant is measured against: the one in the same kind
    of nginx."""
    return "floor" + suffix_of(variant)


def nginx_include(addresses, older=False):
    """`kong_looker.nginx.conf` without its comments, for the http block;
    with `addresses`, the client address from the request's x-bench-addr
    header, since bare nginx sees every request from 127.0.0.1 (in Kong,
    the real-IP module puts the client's address in `$remote_addr`).
    `older`: in the earlier release's format (`kl1`), nginx's figures
    without the request's fields, which the filter then reads from the
    header map."""
    with open(os.path.join(ROOT, "kong_looker.nginx.conf")) as f:
        text = "".join(line for line in f if not line.lstrip().startswith("#"))
    if older:
        if text.count('"kl2|') != 1 or text.count("$remote_addr\\n") != 1:
            sys.exit("kong_looker.nginx.conf: expected a kl2 line with its figures ending at $remote_addr")
        head, tail = text.split("$remote_addr\\n", 1)
        text = head.replace('"kl2|', '"kl1|') + "$remote_addr" + tail[tail.index('";'):]
    if addresses:
        if text.count("$remote_addr") != 1:
            sys.exit("kong_looker.nginx.conf: expected $remote_addr once in the line")
        text = text.replace("$remote_addr", "$http_x_bench_addr")
    return text


# Engine functions whose calls count host calls: every import goes through
# the trampoline; the others say which kind.
PROBES = {
    "host calls": "ngx_wavm_hfunc_trampoline",
    "property reads": "ngx_proxy_wasm_properties_get",
    "header map reads": "ngx_proxy_wasm_maps_get_all",
    "header value reads": "ngx_proxy_wasm_maps_get",
    "guest allocations": "ngx_proxy_wasm_alloc",
    "calls into the guest": "ngx_wavm_instance_call_funcref",
}

# The worker's system calls, counted beside the host calls: at saturation
# each epoll_wait that finds work serves the requests it returns, so its
# count says how many requests a trip through the event loop serves.
SYSCALLS = {
    "system calls": "raw_syscalls:sys_enter",
    "epoll_wait": "syscalls:sys_enter_epoll_wait",
}


def routes_of(args, wasm):
    """`--routes`: the stand-in router's `.wasm`, or None."""
    return wasm["routes"] if args.routes else None


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, what, proc=None):
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} never listened on {port}")


def wait_served(port, what, proc):
    """Until a request is answered: a listening socket is not yet a filter
    ready to run."""
    deadline = time.time() + 900
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=600).read()
            return
        except OSError:
            time.sleep(1)
    sys.exit(f"{what} never answered")


# The most requests a callgrind warm-up sends (some 40 s at its pace).
WARMUP_MAX = 50_000


def instructions(nginx, script, seconds, warmup_requests):
    """Instructions per request of nginx under callgrind: its counters zeroed
    after a warm-up, `seconds` of wrk (four connections: the server runs
    about a hundred times slower), then dumped. User space only: nginx,
    the engine and the filter's compiled code, not the kernel.

    The warm-up sends the request file once, as the timed blocks do many
    times over (otherwise the count is of a filter meeting every caller,
    token and address for the first time), or its first WARMUP_MAX
    requests: by then the filter knows the frequent callers, and at high
    cardinality the mix keeps bringing callers it has not met, as
    production does."""
    sent = 0
    while sent < min(warmup_requests, WARMUP_MAX):
        sent += wrk(nginx.port, script, 10, 4)["requests"]
    subprocess.run(["callgrind_control", "-z", str(nginx.worker)], check=True,
                   capture_output=True)
    served = wrk(nginx.port, script, seconds, 4)["requests"]
    subprocess.run(["callgrind_control", "-d", "measured", str(nginx.worker)], check=True,
                   capture_output=True)
    dumps = [f for f in os.listdir(nginx.prefix) if f.startswith("callgrind.out.")]
    if len(dumps) != 1:
        sys.exit(f"{nginx.variant}: expected one callgrind dump, found {dumps}")
    events, totals = [], []
    with open(os.path.join(nginx.prefix, dumps[0])) as f:
        for line in f:
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith("summary:"):
                totals = [int(x) for x in line.split()[1:]]
    per = {e: t / max(served, 1) for e, t in zip(events, totals)}
    return per.get("Ir", 0), served, os.path.join(nginx.prefix, dumps[0]), per


def self_costs(dump, event="Ir"):
    """Each function's own count of one event (instructions by default) in a
    callgrind dump, by (object, function): cost lines under `fn=`, less the
    inclusive cost line that follows each `calls=`."""
    names = {"ob": {}, "fn": {}}
    costs = {}
    ob = fn = None
    skip = False
    column = 1
    with open(dump) as f:
        for line in f:
            if line.startswith("events:"):
                # a cost line is a position, then the events in this order
                column = 1 + line.split()[1:].index(event)
                continue
            m = re.match(r"(c?)(ob|fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
            if m:
                call, kind, ident, name = m.groups()
                table = names[kind]
                if name is not None:
                    table[ident] = name
                if not call:
                    if kind == "ob":
                        ob = table.get(ident)
                    else:
                        fn = table.get(ident)
                continue
            if line.startswith("calls="):
                skip = True
                continue
            if line[:1].isdigit() or line[:1] in "+-*":
                if skip:
                    skip = False
                    continue
                parts = line.split()
                if len(parts) > column:
                    key = (ob, fn)
                    costs[key] = costs.get(key, 0) + int(parts[column])
    return costs


def jit_symbols(pid):
    """Wasmtime's perf map of a process: sorted (start, end, name)."""
    out = []
    with open(f"/tmp/perf-{pid}.map") as f:
        for line in f:
            start, size, name = line.rstrip("\n").split(" ", 2)
            out.append((int(start, 16), int(start, 16) + int(size, 16), name))
    return sorted(out)


def attribute(costs, symbols, served):
    """Instructions per request by part and by guest function: code with no
    object (Wasmtime's JIT) is named from the perf map by address."""
    import bisect
    starts = [s for s, _, _ in symbols]
    parts, guest = {}, {}
    for (ob, fn), n in costs.items():
        per = n / max(served, 1)
        if ob in (None, "???") and fn and fn.startswith("0x"):
            addr = int(fn.split("'")[0], 16)
            i = bisect.bisect_right(starts, addr) - 1
            name = symbols[i][2] if i >= 0 and addr < symbols[i][1] else "(JIT, unnamed)"
            guest[name] = guest.get(name, 0) + per
            part = "the guest (JIT)"
        else:
            part = os.path.basename(ob or "?")
        parts[part] = parts.get(part, 0) + per
    return parts, guest


def build(args):
    """The filters, the collector and the request files."""
    env = dict(os.environ, CARGO_TARGET_DIR=TARGET)
    if not args.no_build:
        run(["make", "-s", "build"], cwd=ROOT, env=env)
        run(["cargo", "build", "-q", "--release", "-p", "kong-looker-collector",
             "--bin", "kong-looker-collector"], cwd=ROOT, env=env)
        for name in ("noop", "floor", "routes"):
            run(["cargo", "build", "-q", "--release", "--target", "wasm32-wasip1",
                 "--manifest-path", f"testkit/tests/filters/{name}/Cargo.toml",
                 "--target-dir", FILTERS], cwd=ROOT, env=env)
        if args.profile:
            run(["make", "-s", "names"], cwd=ROOT, env=env)
        run(["cargo", "build", "-q", "--release", "-p", "kong-looker-testsupport",
             "--example", "wrk_requests"], cwd=ROOT, env=env)
    wasm = {
        "noop": os.path.join(FILTERS, "wasm32-wasip1/release/noop.wasm"),
        "floor": os.path.join(FILTERS, "wasm32-wasip1/release/floor.wasm"),
        "routes": os.path.join(FILTERS, "wasm32-wasip1/release/routes.wasm"),
        "kong_looker": os.path.join(ROOT, "dist/kong_looker.wasm"),
    }
    if args.profile:
        # The same code with its function names, so the profile names them.
        wasm["kong_looker"] = os.path.join(ROOT, "dist/kong_looker.names.wasm")
    return wasm


# Distinct requests per mix, unless --requests says: wrk cycles through
# them, so the cycle must be long next to what the filter's caches and
# dictionary hold, or at high cardinality every identity repeats on time.
REQUESTS = {"reference": 20_000, "high": 200_000}


def request_count(args, mix):
    """How many distinct requests `mix` has in this run."""
    return args.requests or REQUESTS.get(mix, 20_000)


def requests_file(work, mix, args):
    """The mix as wrk's requests; with `--routes`, each carries its route id
    for the stand-in router; unless `--loopback`, its client address."""
    path = os.path.join(work, f"requests-{mix}.lua")
    count = request_count(args, mix)
    with open(path, "w") as f:
        run([os.path.join(TARGET, "release/examples/wrk_requests"), str(count), mix]
            + (["routes"] if args.routes else [])
            + ([] if args.loopback else ["addresses"]), stdout=f)
    return path


# wrk's latencies, every distinct value (µs) and its count, written by the
# script's done() to the file this names, so that rounds can be pooled.
LATENCIES = "KL_WRK_LATENCIES"
# Where in the requests a wrk run starts (0 for the first). A fixed-rate
# round sends some 9,000 requests: from the first each time, every round
# would replay the same few thousand callers, and the high-cardinality mix
# would not be one.
START = "KL_WRK_START"


def wrk_script(work, requests, rate, connections, pacing="even"):
    """wrk's Lua: the requests in turn; at a fixed rate, a delay before each
    request on a connection; at the end, the latency histogram to
    $KL_WRK_LATENCIES if set.

    Pacing "even" waits the same time every time. wrk's timers tick in whole
    ms, so connections that once answer together fire together from then
    on: the 16 fall into step, arrive as one burst, and the last waits for
    the other fifteen (p99 near 16 times a request's cost). "poisson" draws
    each wait from an exponential distribution, so that arrivals are
    independent, as from many clients; whole ms are drawn with the mean kept."""
    path = os.path.join(work, f"wrk-{os.path.basename(requests)}-{rate}-{pacing}.lua")
    delay = ""
    if rate and pacing == "even":
        delay = f"function delay() return {1000.0 * connections / rate:.3f} end\n"
    elif rate:
        # wrk drops the fraction of a delay; floor(X) for X exponential with
        # mean m has mean 1 / (e^(1/m) - 1), which is set to the wanted mean.
        mean = 1000.0 * connections / rate
        m = 1.0 / math.log(1.0 + 1.0 / mean)
        delay = ("math.randomseed(os.time())\n"
                 f"function delay() return -{m:.6f} * math.log(1 - math.random()) end\n")
    done = (
        "function done(summary, latency, requests)\n"
        f'  local path = os.getenv("{LATENCIES}")\n'
        "  if not path then return end\n"
        '  local f = io.open(path, "w")\n'
        "  for i = 1, #latency do\n"
        "    local value, count = latency(i)\n"
        '    f:write(string.format("%d %d\\n", value, count))\n'
        "  end\n"
        "  f:close()\n"
        "end\n")
    with open(path, "w") as f:
        f.write(f'local requests = dofile("{requests}")\n'
                f'local i = (tonumber(os.getenv("{START}")) or 0) % #requests\n'
                "function request()\n  i = i % #requests + 1\n  return requests[i]\nend\n"
                + delay + done)
    return path


def pooled(hist, q):
    """The q-th percentile (µs) of a pooled latency histogram {µs: count}."""
    total = sum(hist.values())
    seen = 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= total * q / 100:
            return value
    return float("nan")


class Nginx:
    def __init__(self, engine, work, variant, wasm, collector, perfmap=False, extra="",
                 callgrind=False, cache_sim=False, cache_ll=None, routes=None, addresses=True):
        self.variant = variant
        self.prefix = os.path.join(work, f"nginx-{variant}")
        os.makedirs(os.path.join(self.prefix, "logs"))
        os.chmod(self.prefix, 0o777)
        os.chmod(os.path.join(self.prefix, "logs"), 0o777)
        self.port, upstream = free_port(), free_port()
        # Wasmtime writes /tmp/perf-PID.map for perf to name the JIT code.
        # Kong turns Wasmtime's compilation cache on (its `wasmtime_cache_*`
        # settings), so a worker loads the filter compiled before. A worker
        # that compiles it keeps Cranelift's scratch, some 20 MB for
        # kong_looker, in its heap for good, which is not the filter's.
        cache = ""
        if wasm and not callgrind:
            cache_dir = os.path.join(work, "wasmtime-cache")
            os.makedirs(cache_dir, exist_ok=True)
            os.chmod(cache_dir, 0o777)
            cache_conf = os.path.join(work, "wasmtime-cache.toml")
            with open(cache_conf, "w") as f:
                f.write(f'[cache]\nenabled = true\ndirectory = "{cache_dir}"\n')
            cache = f"cache_config {cache_conf};"
        flags = f"flag profiler perfmap; {cache}" if perfmap else cache
        flags = f"wasmtime {{ {flags} }}" if flags else ""
        # `--routes`: Kong's router stood in for, first in the location, so
        # that every filter after it reads a route id as in Kong.
        router = f"module routes {routes};" if wasm and routes else ""
        module = f"wasm {{ module {variant} {wasm}; {router} {flags} }}" if wasm else ""
        filt = ""
        line = "" if variant.endswith(SINGLE) else nginx_include(addresses, variant.endswith(OLDER))
        if base_of(variant) in ("kong_looker", "before"):
            more = f",{extra}" if extra else ""
            cfg = (f'{{"collector":"127.0.0.1:{collector}","workspace":"bench",'
                   f'"signing_key":"{KEY}"{more}}}')
            filt = f"proxy_wasm {variant} '{cfg}';"
        elif wasm:
            filt = f"proxy_wasm {variant};"
        if router:
            filt = f"proxy_wasm routes; {filt}"
        p = self.prefix
        conf = f"""daemon off;
master_process {"off" if callgrind else "on"};
worker_processes 1;
{"" if callgrind else "worker_cpu_affinity 01;"}
error_log {p}/logs/error.log notice;
pid {p}/logs/nginx.pid;
events {{ worker_connections 1024; }}
{module}
http {{
    access_log off;
{line}
    keepalive_requests 1000000;
    client_body_temp_path {p}/client_body;
    proxy_temp_path {p}/proxy;
    upstream backend {{ server 127.0.0.1:{upstream}; keepalive 64; keepalive_requests 1000000; }}
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    server {{
        listen 127.0.0.1:{self.port};
        proxy_wasm_request_headers_in_access on;
        location / {{ {filt} proxy_pass http://backend; }}
    }}
    server {{
        listen 127.0.0.1:{upstream};
        location / {{ return 200 "ok"; }}
    }}
}}
"""
        self.conf = os.path.join(p, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        # Under callgrind nginx is one process, so that the count is the
        # worker's; compiling the filter there takes a minute.
        valgrind = ["valgrind", "--tool=callgrind", "--smc-check=all-non-file",
                    f"--callgrind-out-file={p}/callgrind.out"] if callgrind else []
        if callgrind and cache_sim:
            valgrind.append("--cache-sim=yes")
            if cache_ll:
                valgrind.append(f"--LL={cache_ll},16,64")
        self.proc = subprocess.Popen(
            valgrind + [engine, "-p", p, "-c", self.conf, "-e", "stderr"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(p, "logs/stderr.log"), "w"))
        wait_port(self.port, f"nginx ({variant})", self.proc)
        wait_port(upstream, f"nginx upstream ({variant})", self.proc)
        if callgrind:
            self.worker = self.proc.pid
            wait_served(self.port, f"nginx ({variant}) under callgrind", self.proc)
        else:
            self.worker = self.find_worker()
            if wasm:
                self.restart_worker(engine)

    def restart_worker(self, engine):
        """Once the first worker has compiled the filter into the cache, a
        new worker that loads it, as Kong's workers do after the first
        start: its memory is then what the filter holds, not a compiler's."""
        wait_served(self.port, f"nginx ({self.variant})", self.proc)
        old = self.worker
        run([engine, "-p", self.prefix, "-c", self.conf, "-s", "reload"])
        deadline = time.time() + 60
        while os.path.exists(f"/proc/{old}") and time.time() < deadline:
            time.sleep(0.05)
        if os.path.exists(f"/proc/{old}"):
            sys.exit(f"nginx ({self.variant}): the first worker did not exit on reload")
        self.worker = self.find_worker()
        wait_served(self.port, f"nginx ({self.variant})", self.proc)

    def find_worker(self):
        deadline = time.time() + 10
        while time.time() < deadline:
            out = subprocess.run(["pgrep", "-P", str(self.proc.pid)],
                                 capture_output=True, text=True).stdout.split()
            if out:
                return int(out[0])
            time.sleep(0.05)
        sys.exit(f"nginx ({self.variant}) has no worker")

    def cpu_s(self):
        # schedstat's time on CPU is in ns; stat's utime and stime tick at
        # 100 Hz, too coarse for a worker that is mostly idle.
        with open(f"/proc/{self.worker}/schedstat") as f:
            return int(f.read().split()[0]) / 1e9

    def faults_and_switches(self):
        """Minor page faults and context switches so far: kernel work that
        callgrind's user-space count cannot see."""
        with open(f"/proc/{self.worker}/stat") as f:
            # Fields after the command's closing parenthesis; minflt is 10th.
            minflt = int(f.read().rsplit(")", 1)[1].split()[7])
        switches = 0
        with open(f"/proc/{self.worker}/status") as f:
            for line in f:
                if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                    switches += int(line.split()[1])
        return minflt, switches

    def kernel_marks(self):
        """On-CPU seconds (schedstat), user and system ticks (stat, 100 Hz)
        and voluntary context switches so far: at saturation, whether a
        faster worker idles or pays more in the kernel per request."""
        with open(f"/proc/{self.worker}/stat") as f:
            # utime and stime are the 14th and 15th fields.
            fields = f.read().rsplit(")", 1)[1].split()
        voluntary = 0
        with open(f"/proc/{self.worker}/status") as f:
            for line in f:
                if line.startswith("voluntary_ctxt_switches:"):
                    voluntary = int(line.split()[1])
        return self.cpu_s(), int(fields[11]), int(fields[12]), voluntary

    def rss_kib(self):
        with open(f"/proc/{self.worker}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def memory_parts(self):
        """The worker's resident KiB by kind of mapping (/proc/PID/smaps):
        the brk heap (nginx's pools and the C allocator's, where Cranelift's
        scratch stays after a compile), anonymous mappings (the Wasm linear
        memories that Wasmtime maps here, and the compiled code), and the
        rest: files (nginx, the libraries) and the stack."""
        parts = {"[heap]": 0, "anonymous (Wasm memory, code)": 0, "files, stack": 0}
        kind = "files, stack"
        with open(f"/proc/{self.worker}/smaps") as f:
            for line in f:
                head = line.split()
                if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                    path = head[5] if len(head) > 5 else ""
                    kind = ("[heap]" if path == "[heap]" else
                            "anonymous (Wasm memory, code)" if not path else
                            "files, stack")
                elif head and head[0] == "Rss:":
                    parts[kind] += int(head[1])
        return parts

    def bad_log_lines(self):
        with open(os.path.join(self.prefix, "logs/error.log")) as f:
            return [l for l in f if re.search(r"\[(alert|crit|emerg|error)\]|panicked|trap", l)]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start_sink(engine, work, procs, nice):
    """A plain nginx (no filter) that answers every batch with 204: any 2xx
    commits a batch, so the filter works as with the collector, and the
    collector's own work is out of the run. Returns its port."""
    prefix = os.path.join(work, "sink")
    os.makedirs(os.path.join(prefix, "logs"))
    port = free_port()
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off;
master_process off;
error_log {prefix}/logs/error.log notice;
pid {prefix}/logs/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    client_max_body_size 0;
    server {{ listen 127.0.0.1:{port}; location / {{ return 204; }} }}
}}
""")
    proc = subprocess.Popen(["nice", "-n", str(nice), "taskset", "-c", "1", engine,
                             "-p", prefix, "-c", conf, "-e", "stderr"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(prefix, "logs/stderr.log"), "w"))
    procs.append(proc)
    wait_port(port, "sink", proc)
    return port


def wrk(port, script, seconds, connections, start=0):
    """wrk against `port` with `script`, from the script's request `start`
    on (its requests in turn, from the first after the last)."""
    hist_file = script + ".latencies"
    out = run(["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
               "--latency", "-s", script, f"http://127.0.0.1:{port}/"],
              capture_output=True, text=True,
              env=dict(os.environ, **{LATENCIES: hist_file, START: str(start)})).stdout
    hist = {}
    if os.path.exists(hist_file):
        with open(hist_file) as f:
            for line in f:
                value, count = line.split()
                hist[int(value)] = hist.get(int(value), 0) + int(count)
        os.remove(hist_file)
    took = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    n = int(took.group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = to_ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {"requests": n, "rps": rps, "p99_ms": p99, "hist": hist,
            "seconds": to_ms(took.group(2) + took.group(3)) / 1000,
            "non2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": socket_errors.group(1) if socket_errors else ""}


def to_ms(text):
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def cpu_ticks():
    """The machine's CPU ticks so far, all and stolen (/proc/stat: time the
    hypervisor gave this VM's vCPUs to others)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return sum(fields), fields[7] if len(fields) > 7 else 0


def steal_since(start):
    """Percent of the CPU time since `start` (from cpu_ticks) that was stolen."""
    total, stolen = cpu_ticks()
    return 100.0 * (stolen - start[1]) / max(total - start[0], 1)


def add_probes(engine, probes):
    """Uprobes on the engine's functions, made afresh: a probe left from an
    earlier run points at the file it was made on, and if the engine was
    replaced since, it never fires (and adding it again fails as a
    duplicate)."""
    group = "probe_" + os.path.basename(engine).replace("-", "_").replace(".", "_")
    subprocess.run(["perf", "probe", "-q", "-d", f"{group}:*"], capture_output=True)
    for p in probes:
        subprocess.run(["perf", "probe", "-q", "-x", engine, "--add", p], capture_output=True)
    return group


def count_calls(nginx, script, seconds, engine):
    """Host calls per request, from uprobes on the engine's functions, and
    the worker's system calls per request, in all and by name."""
    group = add_probes(engine, PROBES.values())
    # An engine built from another module version may lack a function.
    made = [fn for fn in PROBES.values()
            if os.path.exists(f"/sys/kernel/tracing/events/{group}/{fn}")]
    events = ",".join([f"{group}:{fn}" for fn in made] + list(SYSCALLS.values())
                      + ["syscalls:sys_enter_*"])
    out_file = os.path.join(os.path.dirname(script), f"count-{nginx.variant}.txt")
    stat = subprocess.Popen(["perf", "stat", "-x,", "-o", out_file, "-e", events,
                             "-p", str(nginx.worker)])
    time.sleep(0.5)
    result = wrk(nginx.port, script, seconds, 16)
    stat.send_signal(signal.SIGINT)
    stat.wait()
    counts = {}
    with open(out_file) as f:
        for line in f:
            parts = line.strip().split(",")
            if len(parts) > 2 and parts[0].isdigit():
                counts[parts[2]] = int(parts[0])
    wanted = {name: f"{group}:{fn}" for name, fn in PROBES.items()} | SYSCALLS
    n = max(result["requests"], 1)
    by_name = {e.removeprefix("syscalls:sys_enter_"): c / n for e, c in counts.items()
               if e.startswith("syscalls:sys_enter_")}
    return {name: counts[event] / n if event in counts else math.nan
            for name, event in wanted.items()}, by_name


def stalls(nginx, script, seconds, engine):
    """The engine's calls into the filter timed one by one, with uprobes on
    `ngx_proxy_wasm_run_step` (its step: 7 the log phase, 9 a tick) and its
    return: the long calls that hold up every queued request."""
    group = add_probes(engine, ("ngx_proxy_wasm_run_step step=%si:u32",
                                "ngx_proxy_wasm_run_step%return"))
    data = os.path.join(os.path.dirname(script), f"stalls-{nginx.variant}.data")
    rec = subprocess.Popen(["perf", "record", "-q", "-o", data, "-e",
                            f"{group}:ngx_proxy_wasm_run_step,"
                            f"{group}:ngx_proxy_wasm_run_step__return",
                            "-p", str(nginx.worker)], stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    res = wrk(nginx.port, script, seconds, 16)
    rec.send_signal(signal.SIGINT)
    rec.wait()
    out = subprocess.run(["perf", "script", "-i", data, "-F", "time,event,trace"],
                         capture_output=True, text=True).stdout
    open_steps, took = [], {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d.]+):\s+(\S+):\s*(.*)", line)
        if not m:
            continue
        t, event, rest = float(m.group(1)), m.group(2), m.group(3)
        if event.endswith("__return"):
            if open_steps:
                step, t0 = open_steps.pop()
                took.setdefault(step, []).append((t - t0) * 1e6)
        else:
            step = re.search(r"step=(\d+)", rest)
            open_steps.append((int(step.group(1)) if step else -1, t))
    return res, took.get(7, []), took.get(9, [])


def profile(nginx, script, seconds, work, fixed=False, start=0):
    """perf's view of a worker under load: by part, then the hottest symbols
    of nginx and of the guest. At saturation the µs per request are the
    inverse of the rate; at a fixed rate (`fixed`), the worker's CPU time
    per request, shared out by the samples."""
    # Wasmtime compiled the module in the master and wrote the master's map.
    shutil.copy(f"/tmp/perf-{nginx.proc.pid}.map", f"/tmp/perf-{nginx.worker}.map")
    data = os.path.join(work, f"perf-{nginx.variant}.data")
    rec = subprocess.Popen(["perf", "record", "-q", "-g", "-o", data, "-p", str(nginx.worker)],
                           stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    cpu = nginx.cpu_s()
    res = wrk(nginx.port, script, seconds, 16, start=start)
    us = ((nginx.cpu_s() - cpu) * 1e6 / max(res["requests"], 1) if fixed
          else 1e6 / res["rps"])
    rec.send_signal(signal.SIGINT)
    rec.wait()

    def report(*sort, children=False):
        out = subprocess.run(["perf", "report", "-i", data,
                              "--children" if children else "--no-children", "--stdio", "-g",
                              "none", "--sort", ",".join(sort)],
                             capture_output=True, text=True).stdout
        rows = []
        for line in out.splitlines():
            m = re.match(r"\s*([\d.]+)%\s+(.*)", line)
            if m:
                rows.append((float(m.group(1)), re.sub(r"\s+-\s+-\s*$", "", m.group(2)).strip()))
        return rows

    parts = {}
    for pct, dso in report("dso"):
        part = "the guest (JIT)" if dso.startswith("[JIT]") else dso
        parts[part] = parts.get(part, 0) + pct * us / 100
    if fixed:
        # A response's write wakes its reader, wrk on the other vCPU: in a
        # VM an idle vCPU is woken by an interrupt the hypervisor carries,
        # and the writer pays for it. With children, a row's share
        # includes what it called: the first number is that share.
        woke = next((pct for pct, rest in report("symbol", children=True)
                     if rest.endswith(" sock_def_readable")), 0.0)
        kernel = "[kernel.kallsyms]"
        parts["kernel: waking a socket's reader"] = woke * us / 100
        parts[kernel] = parts.get(kernel, 0) - woke * us / 100
    symbols = [(p * us / 100, sym.split("[.]", 1)[-1].split("[k]", 1)[-1].strip(), sym)
               for p, sym in report("dso", "symbol")]
    return us, parts, symbols


def rate_profile(args, servers, variants, script, work):
    """The --rate-profile report: where the worker's CPU time per request
    goes at the fixed rate, by part, averaged over alternating rounds."""
    profiled = [v for v in variants if v in ("floor", "before", "kong_looker")]
    rounds = args.rate_profile
    acc = {v: {} for v in profiled}
    for r in range(rounds):
        for v in profiled if r % 2 == 0 else profiled[::-1]:
            us, parts, _ = profile(servers[v], script, args.rate_seconds, work, fixed=True,
                                   start=r * args.rate * args.rate_seconds)
            parts["all"] = us
            for part, x in parts.items():
                acc[v][part] = acc[v].get(part, 0) + x / rounds
    print(f"\nperf at the fixed rate ({rounds} rounds of {args.rate_seconds} s), worker CPU "
          "µs per request by part (perf's own cost included):\n")
    print("| part | " + " | ".join(profiled) + " | "
          + " | ".join(f"{v} over the floor" for v in profiled if v != "floor") + " |")
    print("|---|" + "---:|" * (2 * len(profiled) - 1))
    parts = sorted({p for a in acc.values() for p in a} - {"all"},
                   key=lambda p: -acc[profiled[-1]].get(p, 0)) + ["all"]
    for part in parts:
        row = [acc[v].get(part, 0) for v in profiled]
        over = [acc[v].get(part, 0) - acc["floor"].get(part, 0) for v in profiled
                if v != "floor" and "floor" in acc]
        print(f"| {part} | " + " | ".join(f"{x:.2f}" for x in row) + " | "
              + " | ".join(f"{x:+.2f}" for x in over) + " |")


def time_stalls(args, engine, work, wasm, cport, variants):
    """The --stalls report: the long calls into kong_looker, per round, and
    what its ticks cost in all (at a fixed rate, with --stalls-rate, a
    tick's work is shared by fewer requests than at saturation)."""
    variants = [v for v in variants if v in ("before", "kong_looker")]
    servers = {v: Nginx(engine, work, v, wasm.get(v), cport, extra=args.config,
                        routes=routes_of(args, wasm), addresses=not args.loopback)
               for v in variants}
    rate = args.rate if args.stalls_rate else 0
    try:
        for mix in args.mixes.split(","):
            reqs = requests_file(work, mix, args)
            for s in servers.values():
                wrk(s.port, wrk_script(work, reqs, 0, 16), 3, 16)
            script = wrk_script(work, reqs, rate, 16, args.pacing.split(",")[0])
            at = f"a fixed {rate:,} requests/s" if rate else "saturation"
            print(f"\n## mix: {mix}, {args.seconds} s per round at {at}\n")
            print("| filter, round | requests | log phase median µs | log phases over 1 ms | "
                  "over 250 µs | longest | ticks | over 1 ms | over 250 µs | longest | "
                  "ticks' µs per request | wrk p99 ms |")
            print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            for r in range(args.rounds):
                for v in (variants if r % 2 == 0 else variants[::-1]):
                    res, logs, ticks = stalls(servers[v], script, args.seconds, engine)
                    over = lambda xs, us: sum(x > us for x in xs)
                    print(f"| {v}, {r + 1} | {res['requests']:,} | {median(logs):.1f} | "
                          f"{over(logs, 1000)} | {over(logs, 250)} | "
                          f"{max(logs, default=0) / 1000:.2f} ms | "
                          f"{len(ticks)} | {over(ticks, 1000)} | {over(ticks, 250)} | "
                          f"{max(ticks, default=0) / 1000:.2f} ms | "
                          f"{sum(ticks) / max(res['requests'], 1):.2f} | {res['p99_ms']:.2f} |")
    finally:
        for s in servers.values():
            s.stop()


def count_instructions(args, engine, work, wasm, cport, variants):
    """The --instructions report: each variant in turn, alone on the machine."""
    print(f"engine {os.path.basename(engine)} under callgrind, "
          f"{args.instruction_seconds} s of wrk -t1 -c4 per variant")
    for mix in args.mixes.split(","):
        script = wrk_script(work, requests_file(work, mix, args), 0, 4)
        per = {}
        shares = {}
        ishares = {}
        misses = {}
        for v in variants:
            nginx = Nginx(engine, os.path.join(work, mix), v, wasm.get(v), cport,
                          perfmap=args.profile and v != "none", extra=args.config,
                          routes=routes_of(args, wasm), addresses=not args.loopback,
                          callgrind=True, cache_sim=args.cache_sim, cache_ll=args.cache_ll)
            try:
                n, served, dump, events = instructions(nginx, script, args.instruction_seconds,
                                                       request_count(args, mix))
                per[v] = (n, served)
                misses[v] = events
                if args.profile and v != "none":
                    symbols = jit_symbols(nginx.proc.pid)
                    shares[v] = attribute(self_costs(dump), symbols, served)
                    if args.cache_sim:
                        ishares[v] = attribute(self_costs(dump, "I1mr"), symbols, served)
            finally:
                nginx.stop()
        print(f"\n## mix: {mix}\n")
        print("| filter | requests | instructions per request | over none | over no-op "
              "| over floor |\n|---|---:|---:|---:|---:|---:|")
        for v, (n, served) in per.items():
            over = [f"{n - per[b][0]:+,.0f}" if b in per and b != v else ""
                    for b in ("none", "noop", floor_of(v))]
            print(f"| {v} | {served:,} | {n:,.0f} | " + " | ".join(over) + " |")
        if args.cache_sim:
            # callgrind's simulated caches (valgrind's defaults, or the
            # host's where it can read them): what the instructions miss.
            kinds = (("reads", "Dr"), ("writes", "Dw"), ("L1 data misses", "D1mr+D1mw"),
                     ("last-level data misses", "DLmr+DLmw"), ("L1 instruction misses", "I1mr"))
            print("\nSimulated caches, per request (`--cache-sim`):\n")
            print("| filter | " + " | ".join(k for k, _ in kinds) + " |\n|---|"
                  + "---:|" * len(kinds))
            for v, ev in misses.items():
                cells = [sum(ev.get(e, 0) for e in spec.split("+")) for _, spec in kinds]
                floor = misses.get(floor_of(v))
                text = []
                for (_, spec), c in zip(kinds, cells):
                    over = ""
                    if floor and v != floor_of(v):
                        over = f" ({c - sum(floor.get(e, 0) for e in spec.split('+')):+,.1f})"
                    text.append(f"{c:,.1f}{over}")
                print(f"| {v} | " + " | ".join(text) + " |")
        for what, table in (("instructions", shares), ("L1 instruction misses", ishares)):
            print_shares(what, table)


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return (xs[n // 2] + xs[(n - 1) // 2]) / 2 if n else float("nan")


def median_interval(xs, level=0.95):
    """A distribution-free interval for the median of `xs`, the rounds'
    paired differences: the k-th smallest and the k-th largest, k as large
    as keeps the chance that the true median lies between them at least
    `level` (the sign test: each round falls below the median with chance
    one half, whatever the noise's shape). None for fewer than six rounds,
    where no pair of rounds covers 95%."""
    xs = sorted(xs)
    n = len(xs)
    k = 0
    # P(Binomial(n, 1/2) <= j) for j = k, checked one k at a time.
    while True:
        tail = sum(math.comb(n, j) for j in range(k + 1)) / 2 ** n
        if 1 - 2 * tail < level:
            break
        k += 1
    if k == 0:
        return None
    return xs[k - 1], xs[n - k]


def print_paired(what, per_round, ratio=False):
    """Each filter against each baseline round by round. A round's blocks
    run back to back, so the machine's slow drift, which moves whole
    rounds, mostly cancels in the difference; the median of the rounds'
    differences is the figure to quote, and their spread says how far to
    trust it. kong_looker is paired with 'before' too, when it ran."""
    bases = [b for b in ("noop", "floor") + tuple("floor" + x for x in SUFFIXES) if b in per_round]
    others = [v for v in per_round if v not in ("none", "noop")]
    against_before = "before" in per_round and "kong_looker" in per_round
    if not (bases or against_before) or not others or len(next(iter(per_round.values()))) < 2:
        return
    print(f"\nPaired by round, {what}: "
          + ("ratio to" if ratio else "difference from") + " each baseline's block "
          "in the same round, then the median and range of the rounds\n")
    print("| filter | baseline | each round | median | 95% interval of the median | range |\n"
          "|---|---|---|---:|---|---|")
    for v in others:
        # The build under test is also paired with the earlier one.
        for b in bases + (["before"] if v == "kong_looker" and "before" in per_round else []):
            if b == v or (b.startswith("floor") and (b != floor_of(v) or v == CONTROL)):
                continue
            if ratio:
                d = [x / y for x, y in zip(per_round[v], per_round[b]) if y > 0]
                show = lambda x: f"{x:.2f}x"
            else:
                d = [x - y for x, y in zip(per_round[v], per_round[b])]
                show = lambda x: f"{x:+.1f}"
            ci = median_interval(d)
            ci = f"{show(ci[0])} to {show(ci[1])}" if ci else "(too few rounds)"
            print(f"| {v} | {b} | " + ", ".join(show(x) for x in d) + f" | {show(median(d))} | "
                  f"{ci} | {show(min(d))} to {show(max(d))} |")


def paired(per_round, v, b):
    """v's block less b's in the same round, for each round; None when
    either did not run."""
    if v not in per_round or b not in per_round or not per_round[v]:
        return None
    return [x - y for x, y in zip(per_round[v], per_round[b])]


GOAL_US = 5.0
GOAL_OVER_FLOOR_US = 2.0
GOAL_P99 = 1.10


def print_saturation_kernel(spent):
    """Where the worker's time at saturation goes besides the guest: its
    idle share (off the CPU while wrk ran, which wrk's own pace leaves), the
    kernel's share of its CPU time (stat's ticks), and how many requests
    it serves between sleeps in epoll_wait (voluntary switches): whether
    a filter's cost at saturation is its own, or the kernel's as well."""
    print("\nThe worker at saturation, all rounds (idle: off the CPU while wrk ran; the "
          "CPU time also counts wrk's connecting and closing):\n")
    print("| filter | CPU µs per request | idle % | kernel % of CPU | "
          "kernel µs per request | requests per sleep |\n|---|---:|---:|---:|---:|---:|")
    for v, (cpu, user, system, sleeps, loaded, served) in spent.items():
        ticks = max(user + system, 1)
        kernel_us = cpu * system / ticks * 1e6 / max(served, 1)
        idle = 100 * (1 - cpu / max(loaded, 1e-9))
        print(f"| {v} | {cpu * 1e6 / max(served, 1):.1f} | {idle:.1f} | "
              f"{100 * system / ticks:.1f} | {kernel_us:.1f} | {served / max(sleeps, 1):.1f} |")


def print_goals(rows):
    """Issue 17's goals against this run's figures for kong_looker: at most
    5 µs over the no-op filter (within 2 µs of the floor where the floor
    alone is over 5), and p99 within 10% of the no-op filter's. In µs the
    figures follow the machine's pace, so the share of the no-op filter's
    time is printed beside them."""
    if not rows:
        return
    print("\nAgainst issue 17's goals (kong_looker; paired medians, pooled p99):\n")
    print("| goal | measured | verdict |\n|---|---|---|")
    for goal, measured, met in rows:
        verdict = ("" if met is None else met if isinstance(met, str)
                   else "met" if met else "**not met**")
        print(f"| {goal} | {measured} | {verdict} |")


def cost_goal(where, per_round):
    """The row for the cost goal: 5 µs over the no-op filter, or within 2
    µs of the floor when the floor itself is over 5 µs (by the paired
    medians). Met when the 95% interval of kong_looker's paired median
    lies within the goal, not met when it lies past it, and otherwise
    undecided: the rounds' spread covers the line."""
    over_noop = paired(per_round, "kong_looker", "noop")
    if over_noop is None:
        return None
    over_floor = paired(per_round, "kong_looker", "floor")
    floor_over_noop = paired(per_round, "floor", "noop")
    floor_median = median(floor_over_noop) if floor_over_noop else None
    if floor_median is not None and floor_median > GOAL_US and over_floor:
        d, goal = over_floor, GOAL_OVER_FLOOR_US
        what = (f"{where}: within {goal:g} µs of the floor "
                f"(the floor is {floor_median:+.1f} over the no-op filter)")
        floor = ""
    else:
        d, goal = over_noop, GOAL_US
        what = f"{where}: at most {goal:g} µs over the no-op filter"
        floor = f" (floor {floor_median:+.1f})" if floor_median is not None else ""
    ci = median_interval(d)
    if ci is None:
        met = median(d) <= goal
        shown = f"{median(d):+.2f}{floor}"
    else:
        met = True if ci[1] <= goal else False if ci[0] > goal else "undecided"
        shown = f"{median(d):+.2f} (95%: {ci[0]:+.1f} to {ci[1]:+.1f}){floor}"
    return what, shown, met


def print_pooled(hists):
    """Latency percentiles of every request of every fixed-rate round
    together: a round's p99 rests on its slowest 1%, a few hundred
    requests, and two identical servers' rounds differ by a third."""
    if not all(hists.values()):
        return
    base = hists.get("noop")
    print("\nAll fixed-rate rounds pooled, wrk's latency percentiles in µs "
          "(ratio to the no-op filter's):\n")
    print("| filter | requests | p50 | p90 | p99 | p99.9 |\n|---|---:|---:|---:|---:|---:|")
    for v, h in hists.items():
        cells = []
        for q in (50, 90, 99, 99.9):
            x = pooled(h, q)
            cells.append(f"{x:,}" + (f" ({x / pooled(base, q):.2f}x)" if base and v != "noop"
                                     else ""))
        print(f"| {v} | {sum(h.values()):,} | " + " | ".join(cells) + " |")


def print_shares(what, shares):
    """A profile's counts per request by part, then by guest function."""
    if not shares:
        return
    parts = sorted({p for ps, _ in shares.values() for p in ps},
                   key=lambda p: -max(ps.get(p, 0) for ps, _ in shares.values()))
    print(f"\n{what[0].upper() + what[1:]} per request by part:\n")
    print("| part | " + " | ".join(shares) + " |\n|---|" + "---:|" * len(shares))
    for part in parts:
        print(f"| {part} | " + " | ".join(f"{ps.get(part, 0):,.0f}"
                                           for ps, _ in shares.values()) + " |")
    for v, (_, guest) in shares.items():
        print(f"\n{v}: the guest's functions, own {what} per request\n")
        print(f"| function | {what} |\n|---|---:|")
        for name, n in sorted(guest.items(), key=lambda kv: -kv[1])[:40]:
            if n >= 1:
                print(f"| `{demangle(name)[:100]}` | {n:,.0f} |")


def demangle(name):
    """Rust's legacy symbol mangling, as Wasmtime's perf map leaves it."""
    if not name.startswith("_ZN"):
        return name
    parts, i = [], 3
    while i < len(name) and name[i].isdigit():
        j = i
        while name[j].isdigit():
            j += 1
        n = int(name[i:j])
        parts.append(name[j:j + n])
        i = j + n
    if parts and re.fullmatch(r"h[0-9a-f]{16}", parts[-1]):
        parts.pop()
    text = "::".join(parts)
    for code, ch in (("$LT$", "<"), ("$GT$", ">"), ("$u20$", " "), ("$RF$", "&"),
                     ("$C$", ","), ("$BP$", "*"), ("$u7b$", "{"), ("$u7d$", "}"),
                     ("$u5b$", "["), ("$u5d$", "]"), ("..", "::")):
        text = text.replace(code, ch)
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine", default=os.path.join(ROOT, "../shared/ngx-wasm/bin/nginx"))
    ap.add_argument("--seconds", type=int, default=15, help="each saturation block")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds per mix")
    ap.add_argument("--rate", type=int, default=3000, help="requests/s for the CPU figure")
    ap.add_argument("--rate-seconds", type=int, default=10)
    ap.add_argument("--rate-rounds", type=int, default=None,
                    help="alternating fixed-rate rounds (default: --rounds); with "
                         "--rounds 0, only these run")
    ap.add_argument("--pacing", default="poisson",
                    help="the fixed rate's arrivals, comma-separated for each in turn: "
                         "'poisson' (independent) or 'even' (wrk's connections in step)")
    ap.add_argument("--mixes", default="reference,high")
    ap.add_argument("--requests", type=int,
                    help="distinct requests per mix (default: "
                         + ", ".join(f"{m} {n:,}" for m, n in REQUESTS.items()) + ")")
    ap.add_argument("--loopback", action="store_true",
                    help="every request from 127.0.0.1, as bare nginx sees it, instead of from "
                         "its client address in the mix (sent in x-bench-addr and put in "
                         "$kong_looker_log's address field, as Kong's real-IP settings would)")
    ap.add_argument("--count", action="store_true", help="count host calls with uprobes")
    ap.add_argument("--profile", action="store_true",
                    help="perf profile of kong_looker; with --instructions, the instructions "
                         "by part and by guest function")
    ap.add_argument("--rate-profile", type=int, default=0, metavar="ROUNDS",
                    help="perf profiles of the floor and kong_looker (and 'before') at the "
                         "fixed rate, in this many alternating rounds: CPU µs per request "
                         "by part")
    ap.add_argument("--before", metavar="WASM",
                    help="an earlier kong_looker.wasm, run beside the others as 'before'")
    ap.add_argument("--config", default="", metavar="JSON_MEMBERS",
                    help='more of kong_looker\'s config, e.g. \'"batch":{"max_records":1000}\'')
    ap.add_argument("--variants", default="", help="only these, comma-separated")
    ap.add_argument("--single-reads", action="store_true",
                    help="the floor and kong_looker again in nginx without $kong_looker_log "
                         "(floor_single, kong_looker_single): nginx's figures read one by one")
    ap.add_argument("--older-line", action="store_true",
                    help="the floor and kong_looker again in nginx with the earlier release's "
                         "$kong_looker_log (floor_kl1, kong_looker_kl1): nginx's figures in one "
                         "read, the request's fields from the header map")
    ap.add_argument("--control", action="store_true",
                    help=f"the no-op filter twice ({CONTROL}, in an nginx of its own): the "
                         "spread between identical servers, against which to read the others")
    ap.add_argument("--stalls", action="store_true",
                    help="time each log phase and tick of kong_looker (and 'before') with "
                         "uprobes, in alternating rounds, instead of the timed blocks")
    ap.add_argument("--stalls-rate", action="store_true",
                    help="with --stalls, the rounds at --rate instead of at saturation")
    ap.add_argument("--instructions", action="store_true",
                    help="instructions per request under callgrind instead of timed blocks "
                         "(figures that do not drift with the machine's load)")
    ap.add_argument("--cache-sim", action="store_true",
                    help="with --instructions, callgrind's cache simulation: data reads, "
                         "writes and misses per request (over the floor in brackets)")
    ap.add_argument("--cache-ll", type=int, metavar="BYTES",
                    help="with --cache-sim, the simulated last-level cache's size (16-way, "
                         "64-byte lines), e.g. 1048576 for a core's private L2: callgrind "
                         "reads it from the machine, and in this VM that one holds everything")
    ap.add_argument("--instruction-seconds", type=int, default=30)
    ap.add_argument("--collector-nice", type=int, default=19, metavar="N",
                    help="the collector's niceness, below wrk on the shared core")
    ap.add_argument("--collector-idle", action="store_true",
                    help="run the collector under SCHED_IDLE instead: only when wrk "
                         "and this script leave core 1 idle")
    ap.add_argument("--sink", action="store_true",
                    help="send kong_looker's batches to a plain nginx answering 204 (on core 1, "
                         "niced) instead of the collector: what the collector's work on each "
                         "batch costs wrk, which shares its core, is left out of the latencies")
    ap.add_argument("--routes", action="store_true",
                    help="each request's route id from the mix in kong.route_id, as Kong's "
                         "router leaves it (bare nginx has none), set by a filter placed first "
                         "in every filtered location (testkit/tests/filters/routes)")
    ap.add_argument("--spin", action="store_true",
                    help="a busy loop on the worker's core under SCHED_IDLE for the whole "
                         "run: the core never halts between requests, so the fixed rate "
                         "runs without the idle core's wake-ups (a diagnostic)")
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    engine = os.path.abspath(args.engine)
    tools = ("wrk", "taskset") + (("perf",) if args.count or args.profile or args.rate_profile
                                  else ())
    tools += ("valgrind", "callgrind_control") if args.instructions else ()
    tools += ("perf",) if args.stalls else ()
    tools += ("chrt",) if args.spin or args.collector_idle else ()
    for tool in tools:
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: apt-get install wrk util-linux linux-perf valgrind")
    if not os.access(engine, os.X_OK):
        sys.exit(f"no engine at {engine}: see ../shared/ngx-wasm/README.md")

    wasm = build(args)
    variants = list(VARIANTS)
    if args.before:
        wasm["before"] = os.path.abspath(args.before)
        variants.insert(3, "before")
    if args.control:
        variants.insert(variants.index("noop") + 1, CONTROL)
    if args.single_reads:
        variants.insert(variants.index("floor") + 1, "floor" + SINGLE)
        variants.append("kong_looker" + SINGLE)
    if args.older_line:
        variants.insert(variants.index("floor") + 1, "floor" + OLDER)
        variants.append("kong_looker" + OLDER)
    for v in variants:
        if v not in wasm and base_of(v) in wasm:
            wasm[v] = wasm[base_of(v)]
    if args.variants:
        variants = [v for v in variants if v in args.variants.split(",")]
    work = tempfile.mkdtemp(prefix="kl-engine-bench-")
    os.chmod(work, 0o755)
    procs = []
    try:
        key = os.path.join(work, "key")
        with open(key, "w") as f:
            f.write(KEY)
        cport = free_port()
        collector = subprocess.Popen(
            (["chrt", "--idle", "0"] if args.collector_idle
             else ["nice", "-n", str(args.collector_nice)]) +
            ["taskset", "-c", "1", os.path.join(TARGET, "release/kong-looker-collector"),
             "serve", "--listen", f"127.0.0.1:{cport}", "--hmac-key-file", key,
             "--store", f"sqlite:{work}/bench.sqlite", "--log", "warn"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "collector.log"), "w"))
        procs.append(collector)
        wait_port(cport, "collector", collector)
        if args.spin:
            # A loop of a few instructions, which leaves the core's caches
            # to the worker: what changes is only that the core is never idle.
            procs.append(subprocess.Popen(["chrt", "--idle", "0", "taskset", "-c", "0",
                                           sys.executable, "-c", "while True: pass"]))
        if args.sink:
            cport = start_sink(engine, work, procs, args.collector_nice)
        if args.instructions:
            count_instructions(args, engine, work, wasm, cport, variants)
            return
        if args.stalls:
            time_stalls(args, engine, work, wasm, cport, variants)
            return
        servers = {}
        for v in variants:
            servers[v] = Nginx(engine, work, v, wasm.get(v), cport,
                               args.profile or args.rate_profile > 0, args.config,
                               routes=routes_of(args, wasm), addresses=not args.loopback)
            procs.append(servers[v].proc)
        rss_before = {v: s.rss_kib() for v, s in servers.items()}
        parts_before = {v: s.memory_parts() for v, s in servers.items()}

        blocks = (f"{args.seconds} s blocks, {args.rounds} rounds" if args.rounds
                  else "fixed-rate rounds only")
        print(f"engine {os.path.basename(engine)}, {blocks}, "
              f"wrk -t1 -c16 on core 1, worker on core 0")
        for mix in args.mixes.split(","):
            reqs = requests_file(work, mix, args)
            script = wrk_script(work, reqs, 0, 16)
            # Warm up (JIT, caches, dictionaries) over the mix's whole cycle at
            # least: at high cardinality 3 s at saturation is some 120,000
            # of its 200,000 requests, and fixed-rate rounds run straight
            # after it met callers and addresses for the first time.
            cycle = request_count(args, mix)
            for s in servers.values():
                sent = 0
                while sent < cycle:
                    sent += wrk(s.port, script, 3, 16, start=sent)["requests"]
            rps = {v: [] for v in variants}
            p99 = {v: [] for v in variants}
            # On-CPU s, user ticks, system ticks, sleeps, wrk's s, requests.
            spent = {v: [0.0, 0, 0, 0, 0.0, 0] for v in variants}
            ticks = cpu_ticks()
            for r in range(args.rounds):
                order = variants if r % 2 == 0 else variants[::-1]
                for v in order:
                    marks = servers[v].kernel_marks()
                    res = wrk(servers[v].port, script, args.seconds, 16)
                    for i, m in enumerate(servers[v].kernel_marks()):
                        spent[v][i] += m - marks[i]
                    spent[v][4] += res["seconds"]
                    spent[v][5] += res["requests"]
                    if res["non2xx"] or res["socket_errors"]:
                        sys.exit(f"{v}: {res}")
                    rps[v].append(res["rps"])
                    p99[v].append(res["p99_ms"])
            print(f"\n## mix: {mix}\n")
            goals = []
            if args.rounds:
                steal = steal_since(ticks)
                print(f"Steal time during the saturation blocks: {steal:.1f}%"
                      + (" (over 5%: the figures drift with the machine's other load)"
                         if steal > 5 else "") + "\n")
                print("| filter | requests/s (each round) | µs per request | added over none | "
                      "over no-op | over floor | p99 ms at saturation |")
                print("|---|---|---:|---:|---:|---:|---|")
                mean = {v: sum(x) / len(x) for v, x in rps.items()}
                us = {v: 1e6 / mean[v] for v in variants}
                for v in variants:
                    rounds = ", ".join(f"{x:,.0f}" for x in rps[v])
                    added = [f"{us[v] - us[b]:+.1f}" if b != v and b in us else "" for b in ("none", "noop", floor_of(v))]
                    print(f"| {v} | {rounds} | {us[v]:.1f} | {added[0]} | {added[1]} | {added[2]} | "
                          + ", ".join(f"{x:.2f}" for x in p99[v]) + " |")
                sat = {v: [1e6 / x for x in xs] for v, xs in rps.items()}
                print_paired("µs per request at saturation", sat)
                print_saturation_kernel(spent)
                row = cost_goal("at saturation", sat)
                if row:
                    goals.append(row)
                    shares = [x / y for x, y in zip(sat["kong_looker"], sat["noop"]) if y > 0]
                    ci = median_interval(shares)
                    goals.append(("at saturation: kong_looker's time as a share of the no-op "
                                  "filter's (no goal; it holds across hours where µs do not)",
                                  f"{median(shares):.2f}x"
                                  + (f" (95%: {ci[0]:.2f}x to {ci[1]:.2f}x)" if ci else ""), None))

            for pacing in args.pacing.split(","):
                # Fixed-rate blocks alternate too: one block a filter cannot
                # tell apart builds a few µs apart on a machine that drifts.
                rated = wrk_script(work, reqs, args.rate, 16, pacing)
                cpu_s = {v: 0.0 for v in variants}
                served = {v: 0 for v in variants}
                per_round = {v: [] for v in variants}
                rate_p99 = {v: [] for v in variants}
                rate_hist = {v: {} for v in variants}
                kernel = {v: [0, 0] for v in variants}
                ticks = cpu_ticks()
                rate_rounds = args.rounds if args.rate_rounds is None else args.rate_rounds
                for r in range(rate_rounds):
                    order = variants if r % 2 == 0 else variants[::-1]
                    # Each round on the next stretch of the mix, the same for
                    # every filter in it.
                    start = r * args.rate * args.rate_seconds
                    for v in order:
                        before = servers[v].cpu_s()
                        marks = servers[v].faults_and_switches()
                        res = wrk(servers[v].port, rated, args.rate_seconds, 16, start=start)
                        spent = servers[v].cpu_s() - before
                        for i, m in enumerate(servers[v].faults_and_switches()):
                            kernel[v][i] += m - marks[i]
                        cpu_s[v] += spent
                        served[v] += res["requests"]
                        per_round[v].append(spent * 1e6 / max(res["requests"], 1))
                        rate_p99[v].append(res["p99_ms"])
                        for value, count in res["hist"].items():
                            rate_hist[v][value] = rate_hist[v].get(value, 0) + count
                if rate_rounds:  # else nothing ran at the fixed rate
                    cpu = {v: cpu_s[v] * 1e6 / max(served[v], 1) for v in variants}
                    print(f"\nAt a fixed {args.rate:,} requests/s, {pacing} pacing ({rate_rounds} rounds of "
                          f"{args.rate_seconds} s each; steal time {steal_since(ticks):.1f}%):\n")
                    print("| filter | requests/s | worker CPU µs per request (each round) | all rounds | "
                          "added over none | over no-op | over floor | p99 ms (each round) |")
                    print("|---|---:|---|---:|---:|---:|---:|---|")
                    for v in variants:
                        added = [f"{cpu[v] - cpu[b]:+.1f}" if b != v and b in cpu else "" for b in ("none", "noop", floor_of(v))]
                        rate = served[v] / (args.rate_seconds * max(rate_rounds, 1))
                        print(f"| {v} | {rate:,.0f} | " + ", ".join(f"{x:.1f}" for x in per_round[v])
                              + f" | {cpu[v]:.1f} | {added[0]} | {added[1]} | {added[2]} | "
                              + ", ".join(f"{x:.2f}" for x in rate_p99[v]) + " |")
                    print_paired("worker CPU µs per request at the fixed rate", per_round)
                    print_paired("p99 ms at the fixed rate", rate_p99, ratio=True)
                    print_pooled(rate_hist)
                    row = cost_goal(f"worker CPU at {args.rate:,}/s, {pacing}", per_round)
                    if row:
                        goals.append(row)
                    if rate_hist.get("noop") and rate_hist.get("kong_looker"):
                        ratio = pooled(rate_hist["kong_looker"], 99) / pooled(rate_hist["noop"], 99)
                        goals.append((f"p99 at {args.rate:,}/s, {pacing}: within 10% of the no-op "
                                      "filter's", f"{ratio:.2f}x", ratio <= GOAL_P99))
                    print("\nThe worker's minor page faults and context switches per 1,000 requests "
                          "at the fixed rate:\n")
                    print("| filter | page faults | context switches |\n|---|---:|---:|")
                    for v in variants:
                        n = max(served[v], 1) / 1000
                        print(f"| {v} | {kernel[v][0] / n:.2f} | {kernel[v][1] / n:.1f} |")
            print_goals(goals)
            if args.rate_profile:
                rate_profile(args, servers, variants, rated, work)

            if args.count:
                print("\nHost calls (uprobes) and the worker's system calls (tracepoints) per "
                      "request, at saturation; these runs are not timed:\n")
                names = list(PROBES) + list(SYSCALLS)
                print("| filter | " + " | ".join(names) + " |")
                print("|---|" + "---:|" * len(names))
                by_name = {}
                for v in variants:
                    c, by_name[v] = count_calls(servers[v], script, 5, engine)
                    print(f"| {v} | " + " | ".join("n/a" if math.isnan(c[k]) else f"{c[k]:.2f}"
                                                    for k in names) + " |")
                calls = sorted({k for b in by_name.values() for k, x in b.items() if x >= 0.01},
                               key=lambda k: -max(b.get(k, 0) for b in by_name.values()))
                print("\nThe same system calls by name, per request:\n")
                print("| system call | " + " | ".join(by_name) + " |\n|---|"
                      + "---:|" * len(by_name))
                for k in calls:
                    print(f"| {k} | " + " | ".join(f"{b.get(k, 0):.2f}" for b in by_name.values())
                          + " |")
        rss_after = {v: s.rss_kib() for v, s in servers.items()}
        print("\nWorker memory, KiB (VmRSS), at start and at the end:\n")
        print("| filter | start | end |\n|---|---:|---:|")
        for v in variants:
            print(f"| {v} | {rss_before[v]:,} | {rss_after[v]:,} |")
        parts_after = {v: s.memory_parts() for v, s in servers.items()}
        kinds = list(next(iter(parts_after.values())))
        print("\nThe same by kind of mapping (/proc/PID/smaps), KiB resident, start → end:\n")
        print("| filter | " + " | ".join(kinds) + " |\n|---|" + "---:|" * len(kinds))
        for v in variants:
            print(f"| {v} | " + " | ".join(f"{parts_before[v][k]:,} → {parts_after[v][k]:,}"
                                         for k in kinds) + " |")
        if args.profile:
            for mix in args.mixes.split(","):
                print(f"\nperf profiles at saturation, {mix} mix, µs per request by part:\n")
                script = wrk_script(work, requests_file(work, mix, args), 0, 16)
                prof = {v: profile(servers[v], script, 10, work) for v in variants if v != "none"}
                parts = sorted({p for _, ps, _ in prof.values() for p in ps},
                               key=lambda p: -prof["kong_looker"][1].get(p, 0))
                print("| part | " + " | ".join(prof) + " |\n|---|" + "---:|" * len(prof))
                for part in parts:
                    print(f"| {part} | " + " | ".join(f"{ps.get(part, 0):.1f}" for _, ps, _ in
                                                       prof.values()) + " |")
                print("| total | " + " | ".join(f"{us:.1f}" for us, _, _ in prof.values()) + " |")
                for v in [v for v in ("floor", "kong_looker") if v in prof]:
                    print(f"\n{v}, {mix} mix: the hottest symbols, µs per request\n")
                    print("| symbol | where | µs |\n|---|---|---:|")
                    for t, name, sym in prof[v][2][:30]:
                        where = "guest" if sym.startswith("[JIT]") else sym.split()[0]
                        print(f"| `{demangle(name)[:90]}` | {where} | {t:.2f} |")
                    guest = [(t, name) for t, name, sym in prof[v][2] if sym.startswith("[JIT]")]
                    print(f"\n{v}, {mix} mix: the guest's functions, µs per request\n")
                    print("| function | µs |\n|---|---:|")
                    for t, name in guest[:25]:
                        print(f"| `{demangle(name)[:90]}` | {t:.3f} |")
        for v, s in servers.items():
            bad = s.bad_log_lines()
            if bad:
                print(f"\n{v}: {len(bad)} bad lines in the error log, e.g. {bad[0].strip()}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM if p is procs[0] else signal.SIGQUIT)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        if os.environ.get("KEEP") is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")


if __name__ == "__main__":
    main()
