-- The probes of phonehome.core, each against an independent reading of the same fact.
local core = require("phonehome.core")
local probes = require("phonehome.sandbox.probes")
local h = require("support.helper")

local function meminfo(key)
    for line in io.lines("/proc/meminfo") do
        local v = line:match("^" .. key .. ":%s+(%d+) kB")
        if v then return tonumber(v) * 1024 end
    end
end

local MiB = 1024 * 1024

describe("system probes", function()
    it("read total memory as /proc/meminfo does", function()
        assert.are.equal(meminfo("MemTotal"), core.memory_total())
    end)

    -- Free memory moves while other processes run: each reading must lie between two
    -- readings of /proc/meminfo taken just before and just after it.
    local function between(key, probe)
        local before = meminfo(key)
        local v = probe()
        local after = meminfo(key)
        return v >= math.min(before, after) - 16 * MiB and v <= math.max(before, after) + 16 * MiB,
            string.format("%s %d not between %d and %d", key, v, before, after)
    end

    it("read free and available memory as /proc/meminfo does", function()
        assert.is_true(between("MemFree", core.memory_free))
        assert.is_true(between("MemAvailable", core.memory_available))
        assert.is_true(core.memory_available() <= core.memory_total())
    end)

    it("report the cgroup memory limit, or none when it is above RAM", function()
        local f = io.open("/sys/fs/cgroup/memory/memory.limit_in_bytes")
            or io.open("/sys/fs/cgroup/memory.max")
        local text = f and f:read("l")
        if f then f:close() end
        local limit = text and math.tointeger(tonumber(text))
        if limit == nil or limit >= core.memory_total() then
            assert.is_nil(core.memory_limit())
        else
            assert.are.equal(limit, core.memory_limit())
        end
    end)

    it("count logical cores as nproc does", function()
        assert.are.equal(tonumber(h.sh("nproc --all")), core.cpu_count())
        assert.are.equal(tonumber(h.sh("nproc")), core.parallelism())
    end)

    it("read the system uptime as /proc/uptime does", function()
        local up = tonumber(h.sh("cut -d' ' -f1 /proc/uptime"))
        assert.is_true(math.abs(core.system_uptime() - up) < 2)
    end)

    it("name the machine, the OS and the kernel as uname does", function()
        local u = core.uname()
        assert.are.equal(h.sh("uname -m"), u.machine)
        assert.are.equal(h.sh("uname -s"), u.sysname)
        assert.are.equal(h.sh("uname -r"), u.release)
        assert.are.equal(h.sh("uname -m"), probes.system.machine())
    end)

    it("normalise architecture names", function()
        local n = probes.normalise_arch
        assert.are.equal("x86_64", n("x86_64"))
        assert.are.equal("x86_64", n("amd64"))
        assert.are.equal("arm64", n("aarch64"))
        assert.are.equal("arm", n("armv7l"))
        assert.are.equal("x86", n("i686"))
        assert.are.equal("riscv64", n("riscv64"))
    end)

    it("measure a file system as df does", function()
        local size, avail = h.sh("df -B1 --output=size,avail / | tail -1"):match("(%d+)%s+(%d+)")
        local total, free = core.disk("/")
        assert.are.equal(tonumber(size), total)
        assert.is_true(math.abs(free - tonumber(avail)) < 512 * MiB)
    end)

    it("measure a path that does not exist yet at its nearest parent", function()
        local total = probes.system.disk("/tmp/no/such/dir/here")
        assert.are.equal(core.disk("/tmp"), total)
        local ok, err = pcall(probes.system.disk, "relative-and-missing")
        assert.is_false(ok)
        assert.matches("relative%-and%-missing", err)
    end)

    it("fail on a path it cannot measure, naming it", function()
        local total, err = core.disk("/proc/self/fd/999999")
        assert.is_nil(total)
        assert.matches("/proc/self/fd/999999", err)
    end)

    it("tell the time and measure intervals", function()
        assert.is_true(math.abs(core.time() - os.time()) < 2)
        local a = core.monotonic()
        h.sh("sleep 0.1")
        local b = core.monotonic()
        assert.is_true(b - a >= 0.09 and b - a < 5)
    end)

    it("detect Kubernetes from its service variable", function()
        local code = "package.cpath = " .. string.format("%q", package.cpath)
            .. " local c = require('phonehome.core') local ct, k = c.container()"
            .. " io.write(tostring(ct), ' ', tostring(k))"
        -- under `make sanitize` the module needs the sanitizer runtime preloaded
        local lua = "LD_PRELOAD=" .. h.quote(os.getenv("LD_PRELOAD") or "")
            .. " ASAN_OPTIONS=detect_leaks=0 lua5.4 -e " .. h.quote(code)
        local plain = h.sh("env -u KUBERNETES_SERVICE_HOST " .. lua)
        local kube = h.sh("KUBERNETES_SERVICE_HOST=10.0.0.1 " .. lua)
        assert.are.equal("true true", kube)
        local in_pod = h.sh("grep -c kubepods /proc/self/cgroup || true") ~= "0"
        assert.are.equal(in_pod, plain:match(" (%a+)$") == "true")
    end)
end)

describe("process probes", function()
    local children = {}
    local function spawn(lua_code)
        local pid = tonumber(h.sh("lua5.4 -e " .. h.quote(lua_code)
            .. " >/dev/null 2>&1 & echo $!"))
        children[#children + 1] = pid
        return pid
    end

    after_each(function()
        for _, pid in ipairs(children) do h.sh("kill " .. pid .. " 2>/dev/null") end
        children = {}
        h.cleanup()
    end)

    it("measure this process as /proc/self/status does", function()
        local p = core.process()
        local rss
        for line in io.lines("/proc/self/status") do
            rss = rss or line:match("^VmRSS:%s+(%d+)")
        end
        assert.is_true(math.abs(p.rss - tonumber(rss) * 1024) < 16 * MiB)
        assert.is_true(p.peak_rss >= p.rss)
    end)

    it("measure a child whose memory we control", function()
        local ready = h.tmpdir() .. "/ready"
        local pid = spawn("local s = string.rep('x', 200 * 1024 * 1024) "
            .. "io.open('" .. ready .. "', 'w'):write('1'):close() os.execute('sleep 5') return #s")
        h.wait_for(ready, "1")
        h.sh("sleep 0.5")
        local p = assert(core.process(pid))
        assert.are.equal(pid, p.pid)
        assert.is_true(p.rss >= 190 * MiB, "rss " .. p.rss)
        assert.is_true(p.peak_rss >= p.rss)
        assert.is_true(p.uptime >= 0.5 and p.uptime < 10, "uptime " .. p.uptime)
        assert.is_true(math.abs(p.start_time + p.uptime - os.time()) < 2)
    end)

    it("measure a child's CPU time and its average use of one core", function()
        -- busy for 0.6 s of its own CPU time however loaded the machine is, then idle
        local ready = h.tmpdir() .. "/ready"
        local pid = spawn("local t = os.clock() while os.clock() - t < 0.6 do end "
            .. "io.open('" .. ready .. "', 'w'):write('1'):close() os.execute('sleep 5')")
        h.wait_for(ready, "1", 60)
        local p = assert(core.process(pid))
        local cpu = p.user_cpu + p.system_cpu
        assert.is_true(cpu >= 0.55 and cpu < 1.0, "cpu " .. cpu)
        -- the average over its age, both from the same reading
        assert.is_true(p.uptime >= 0.55, "uptime " .. p.uptime)
        assert.is_true(math.abs(p.cpu_percent - cpu / p.uptime * 100) < 0.01,
                       "percent " .. p.cpu_percent)
    end)

    it("measure a young process's age to the tick, not to the second of boot time", function()
        local before = core.monotonic()
        local pid = spawn("os.execute('sleep 5')")
        local after = core.monotonic()
        local p = assert(core.process(pid))
        local now = core.monotonic()
        -- started between before and after, read before now: its age lies in between,
        -- give or take a clock tick (10 ms) each side
        assert.is_true(p.uptime <= now - before + 0.02, "uptime " .. p.uptime)
        assert.is_true(p.uptime >= now - after - 0.02, "uptime " .. p.uptime)
    end)

    it("say so when the process does not exist", function()
        local p, err = core.process(999999999 % 0x7fffffff)
        assert.is_nil(p)
        assert.matches("no process with pid", err)
        assert.has_error(function() core.process(-1) end)
    end)
end)
