-- Another process as phonehome.core reads it from /proc: children started with a crafted
-- environment and command line, one that has exited, one that is gone, and this one.
local core = require("phonehome.core")
local h = require("support.helper")

-- The state of a process (R, S, Z...), from /proc/PID/stat.
local function state(pid)
    local f = io.open("/proc/" .. pid .. "/stat")
    local text = f and f:read("a")
    if f then f:close() end
    return text and text:match("%) (%a)")
end

-- This process's argv and environment, read with plain io.
local function own(name)
    local f = assert(io.open("/proc/self/" .. name, "rb"))
    local text = f:read("a")
    f:close()
    local out = {}
    for s in text:gmatch("([^%z]*)%z") do out[#out + 1] = s end
    return out
end

-- A program that execs another with an environment no shell can make (exec ENV... --
-- PATH ARGV...), and otherwise waits for a signal.
local rawexec_c = [[
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv)
{
    char *env[16];
    int i = 2, n = 0;
    if (argc < 2 || strcmp(argv[1], "exec") != 0)
        for (;;)
            pause();
    while (i < argc && strcmp(argv[i], "--") != 0 && n < 15)
        env[n++] = argv[i++];
    env[n] = NULL;
    execve(argv[i + 1], argv + i + 2, env);
    return 127;
}
]]

describe("process probes of another process", function()
    local children = {}
    local bin, rawexec

    lazy_setup(function()
        bin = h.sh("mktemp -d /tmp/phonehome-spec.XXXXXX")
        rawexec = bin .. "/rawexec"
        h.write(rawexec .. ".c", rawexec_c)
        h.sh("cc -o " .. rawexec .. " " .. rawexec .. ".c")
    end)

    lazy_teardown(function()
        h.sh("rm -rf " .. h.quote(bin))
    end)
    -- Starts a shell command in the background; its pid once it waits in program (after
    -- the execs that set it up: the kernel names the new executable before it has set up
    -- the arguments and the environment), with argv0 as its argv[0] when given.
    local function start(cmd, program, argv0)
        local pid = math.tointeger(tonumber(h.sh(cmd .. " >/dev/null 2>&1 & echo $!")))
        children[#children + 1] = pid
        h.wait_until(function()
            local exe, argv = core.process_exe(pid), core.process_cmdline(pid)
            return exe and exe:match("[^/]*$") == program and state(pid) == "S"
                and (not argv0 or argv and argv[1] == argv0)
        end, program .. " to run")
        return pid
    end

    after_each(function()
        for _, pid in ipairs(children) do h.sh("kill -9 " .. pid .. " 2>/dev/null") end
        children = {}
        h.cleanup()
    end)

    it("read the environment and command line a child was given", function()
        local pid = start("env -i A=1 'B=x y' 'C=a=b' 'D=' sleep 30", "sleep")
        assert.are.same({ A = "1", B = "x y", C = "a=b", D = "" }, core.process_environ(pid))
        assert.are.same({ "sleep", "30" }, core.process_cmdline(pid))
        assert.are.equal(h.sh("readlink -f \"$(command -v sleep)\""), core.process_exe(pid))
        local p = assert(core.process(pid))
        assert.are.equal("sleep", p.comm)
        assert.are.equal(pid, p.pid)
        assert.is_true(math.type(p.ppid) == "integer" and p.ppid > 0)
    end)

    it("read argv[0] as the process set it, and its name from the file it runs", function()
        local pid = start("bash -c 'exec -a my-server sleep 30'", "sleep")
        assert.are.same({ "my-server", "30" }, core.process_cmdline(pid))
        assert.are.equal("sleep", core.process(pid).comm)
    end)

    it("read a name holding spaces and parentheses, and the parent of a child", function()
        local d = h.tmpdir()
        local name = "p) q (r) s"
        h.sh("ln -s \"$(command -v sleep)\" " .. h.quote(d .. "/" .. name))
        -- a direct child of this process: the shell execs the program in its place
        local f = assert(io.popen("echo $$; exec " .. h.quote(d .. "/" .. name) .. " 30"))
        local pid = math.tointeger(tonumber(f:read("l")))
        children[#children + 1] = pid
        local p = h.wait_until(function()
            local q = core.process(pid)
            return q and q.comm == name and q
        end, "the program to run")
        assert.are.equal(core.process().pid, p.ppid)
        h.sh("kill -9 " .. pid)
        f:close()
    end)

    it("keep hostile environment entries to what getenv would see", function()
        local pid = start(rawexec .. " exec NOEQUALS '=empty-name' A=1 A=2 '' "
            .. "'NL=line 1\nline 2' -- " .. rawexec .. " 'weird argv0' '' 'x y' --flag=1",
            "rawexec", "weird argv0")
        assert.are.same({ A = "1", NL = "line 1\nline 2" }, core.process_environ(pid))
        assert.are.same({ "weird argv0", "", "x y", "--flag=1" }, core.process_cmdline(pid))
        assert.are.equal(rawexec, core.process_exe(pid))
    end)

    it("refuse an environment or a command line larger than 1 MiB", function()
        -- ten strings of 120,000 bytes: each under the kernel's limit of one string
        local vars, args = {}, {}
        for i = 1, 10 do
            vars[#vars + 1] = "V" .. i .. "=$x"
            args[#args + 1] = "$x"
        end
        local fill = "x=$(head -c 120000 /dev/zero | tr '\\0' a); "
        local env_pid = start("sh -c " .. h.quote(fill .. "export " .. table.concat(vars, " ")
            .. "; exec " .. rawexec), "rawexec")
        local v, err, code = core.process_environ(env_pid)
        assert.is_nil(v)
        assert.are.equal("cannot read /proc/" .. env_pid
            .. "/environ: environment larger than 1 MiB", err)
        assert.are.equal("integer", math.type(code))
        assert.are.same({ rawexec }, core.process_cmdline(env_pid))
        local arg_pid = start("sh -c " .. h.quote(fill .. "exec " .. rawexec .. " "
            .. table.concat(args, " ")), "rawexec")
        v, err = core.process_cmdline(arg_pid)
        assert.is_nil(v)
        assert.are.equal("cannot read /proc/" .. arg_pid
            .. "/cmdline: command line larger than 1 MiB", err)
        assert.is_table(core.process_environ(arg_pid))
    end)

    it("read the cgroups of a child, and what its environment says of containers", function()
        local plain = start("env -i sleep 30", "sleep")
        local c = assert(core.process_cgroup(plain))
        local lines = {}
        for line in io.lines("/proc/" .. plain .. "/cgroup") do lines[#lines + 1] = line end
        assert.are.same(lines, c.paths)
        local kube_path = table.concat(lines, "\n"):find("kubepods", 1, true) ~= nil
        assert.are.equal(kube_path, c.kubernetes)
        if c.container_id then assert.matches("^%x+$", c.container_id) end
        local podman = assert(core.process_cgroup(start("env -i container=podman sleep 30",
            "sleep")))
        assert.is_true(podman.container)
        assert.are.equal(kube_path, podman.kubernetes)
        local pod = assert(core.process_cgroup(start(
            "env -i KUBERNETES_SERVICE_HOST=10.0.0.1 sleep 30", "sleep")))
        assert.is_true(pod.container)
        assert.is_true(pod.kubernetes)
    end)

    it("read a process that has exited but is not reaped yet", function()
        local d = h.tmpdir()
        -- the parent execs a program that never waits: its exited child stays a zombie
        local parent = start("sh -c 'sleep 0 & echo $! >" .. d .. "/z; exec sleep 30'", "sleep")
        local z = math.tointeger(tonumber(h.wait_for(d .. "/z", "(%d+)")))
        h.wait_until(function() return state(z) == "Z" end, "the child to exit")
        local p = assert(core.process(z))
        assert.are.equal(0, p.rss)
        assert.are.equal(parent, p.ppid)
        assert.are.same({}, core.process_cmdline(z))
        local v, err = core.process_exe(z)
        assert.is_nil(v)
        assert.matches("^cannot read /proc/" .. z .. "/exe: ", err)
        v, err = core.process_environ(z)
        if v then
            assert.are.same({}, v)
        else
            assert.matches("^cannot read /proc/" .. z .. "/environ: ", err)
        end
        assert.is_table(core.process_cgroup(z).paths)
        -- once its parent is gone, it is reaped
        h.sh("kill -9 " .. parent)
        h.wait_until(function() return not core.process(z) end, "the child to be reaped")
        assert.are.equal("no process with pid " .. z, select(2, core.process_environ(z)))
    end)

    it("say which process is gone, for every reading", function()
        -- pids are below pid_max: this one never exists
        local pid = math.tointeger(tonumber(h.sh("cat /proc/sys/kernel/pid_max")))
        for _, name in ipairs({ "process", "process_environ", "process_cmdline", "process_exe",
                                "process_cgroup" }) do
            local v, err, code = core[name](pid)
            assert.is_nil(v, name)
            assert.are.equal("no process with pid " .. pid, err, name)
            assert.is_number(code, name)
        end
        assert.has_error(function() core.process_environ() end)
        assert.has_error(function() core.process_cmdline(0) end)
        assert.has_error(function() core.process_exe(-1) end)
        assert.has_error(function() core.process_cgroup("x") end)
    end)

    it("read this process as plain io does", function()
        local pid = core.process().pid
        assert.are.same(own("cmdline"), core.process_cmdline(pid))
        local env = {}
        for _, entry in ipairs(own("environ")) do
            local k, v = entry:match("^([^=]+)=(.*)$")
            if k and env[k] == nil then env[k] = v end
        end
        assert.are.same(env, core.process_environ(pid))
        assert.are.equal(os.getenv("PATH"), core.process_environ(pid).PATH)
        assert.are.equal(h.sh("readlink /proc/" .. pid .. "/exe"), core.process_exe(pid))
        assert.are.equal(h.sh("cat /proc/" .. pid .. "/comm"), core.process().comm)
        local lines = {}
        for line in io.lines("/proc/self/cgroup") do lines[#lines + 1] = line end
        assert.are.same(lines, core.process_cgroup(pid).paths)
    end)

    it("list every process, sorted", function()
        local pid = start("sleep 30", "sleep")
        local pids = assert(core.processes())
        local seen = {}
        for i, p in ipairs(pids) do
            assert.are.equal("integer", math.type(p))
            if i > 1 then assert.is_true(p > pids[i - 1]) end
            seen[p] = true
        end
        assert.is_true(seen[pid] and seen[core.process().pid])
        local ls = h.sh("ls /proc | grep -c '^[0-9][0-9]*$'")
        assert.is_true(math.abs(#pids - tonumber(ls)) < 50, #pids .. " vs " .. ls)
    end)
end)
