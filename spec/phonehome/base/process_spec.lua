-- Finding the product's process among all processes, and reading its flags.
local core = require("phonehome.core")
local process = require("phonehome.base.process")
local h = require("support.helper")

describe("process.find", function()
    local children, popened, bin, server = {}, {}, nil, nil
    local serial = 0

    -- A program that takes any arguments and waits for a signal.
    lazy_setup(function()
        bin = h.sh("mktemp -d /tmp/phonehome-spec.XXXXXX")
        h.write(bin .. "/pause.c", "#include <unistd.h>\nint main(void) { for (;;) pause(); }\n")
        h.sh("cc -o " .. bin .. "/pause " .. bin .. "/pause.c")
    end)

    lazy_teardown(function()
        h.sh("rm -rf " .. h.quote(bin))
    end)

    -- A copy of it under a name no other process has: { name, path }.
    before_each(function()
        serial = serial + 1
        local name = ("phs%d_%d"):format(core.process().pid, serial)
        server = { name = name, path = h.tmpdir() .. "/" .. name }
        h.sh("cp " .. bin .. "/pause " .. server.path)
    end)

    -- Whether pid waits in the server: the kernel names the new executable of an exec
    -- before it has set up its arguments.
    local function ready(pid)
        local f = io.open("/proc/" .. pid .. "/stat")
        local stat = f and f:read("a")
        if f then f:close() end
        return core.process_exe(pid) == server.path and stat and stat:match("%) S ") ~= nil
    end

    -- Starts the copy in the background (not our child), with arguments; its pid once it
    -- runs.
    local function start(args, argv0)
        local exec = argv0 and "exec -a " .. h.quote(argv0) .. " " or "exec "
        local pid = math.tointeger(tonumber(h.sh("bash -c " .. h.quote(exec .. server.path
            .. " " .. args) .. " >/dev/null 2>&1 & echo $!")))
        children[#children + 1] = pid
        h.wait_until(function() return ready(pid) end, "the server")
        return pid
    end

    local function stop(pid)
        h.sh("kill -9 " .. pid)
        h.wait_until(function()
            local argv = core.process_cmdline(pid)
            return not argv or #argv == 0
        end, "the server to exit")
    end

    after_each(function()
        for _, pid in ipairs(children) do h.sh("kill -9 " .. pid .. " 2>/dev/null") end
        for _, f in ipairs(popened) do
            h.sh("kill -9 " .. f.pid .. " 2>/dev/null")
            f.file:close()
        end
        children, popened = {}, {}
        h.cleanup()
    end)

    it("finds a process by a pattern of its command line", function()
        local pid = start("30 --config /etc/x.conf")
        assert.are.equal(pid, process.find({ command = server.name .. " 30 %-%-config" }))
        assert.are.equal(pid, process.find({ command = "/x%.conf$", exe = server.name }))
        local none, err = process.find({ command = server.name .. " 31" })
        assert.is_nil(none)
        assert.are.equal('no process matches command="' .. server.name .. ' 31"', err)
    end)

    it("finds a process by the basename or the path of its executable", function()
        local pid = start("30", "renamed")
        assert.are.equal(pid, process.find({ exe = server.name }))
        assert.are.equal(pid, process.find({ exe = server.path }))
        assert.are.equal(pid, process.find({ exe = server.name, argv0 = "renamed" }))
        assert.is_nil(process.find({ exe = "/elsewhere/" .. server.name }))
        local none, err = process.find({ exe = server.name, argv0 = server.name })
        assert.is_nil(none)
        assert.are.equal("no process matches exe=" .. server.name .. " argv0=" .. server.name,
                         err)
    end)

    it("finds the oldest of several, and the new one after a restart", function()
        local first = start("30")
        -- ten clock ticks apart at least, so that their start times differ
        h.sh("sleep 0.1")
        local second = start("30")
        assert.are.equal(first, process.find({ exe = server.name }))
        assert.is_true(core.process(first).start_time < core.process(second).start_time)
        stop(first)
        assert.are.equal(second, process.find({ exe = server.name }))
        stop(second)
        assert.is_nil(process.find({ exe = server.name }))
        local again = start("30")
        assert.are.equal(again, process.find({ exe = server.name }))
    end)

    it("never finds phonehome itself or its children", function()
        -- a child of this process, older than any other match
        local f = assert(io.popen("echo $$; exec " .. server.path .. " 30"))
        local child = math.tointeger(tonumber(f:read("l")))
        popened[#popened + 1] = { pid = child, file = f }
        h.wait_until(function() return ready(child) end, "the child")
        assert.are.equal(core.process().pid, core.process(child).ppid)
        assert.is_nil(process.find({ exe = server.name }))
        -- this very command line may be another run's too, but never this process's
        local own = table.concat(core.process_cmdline(core.process().pid), " ")
        assert.are_not.equal(core.process().pid, process.find({ command = own:gsub("%p", "%%%0") }))
        local other = start("30")
        assert.are.equal(other, process.find({ exe = server.name }))
    end)

    it("refuses a match that says nothing", function()
        assert.has_error(function() process.find({}) end)
        assert.has_error(function() process.find() end)
        assert.has_error(function() process.find({ exe = 1 }) end)
    end)
end)

describe("process.flag", function()
    local argv = { "/usr/bin/server", "--config", "/etc/s.toml", "--port=8080", "--verbose",
                   "-data.dir", "/var/lib/s", "--empty=", "--neg", "-5", "--last", "-v",
                   "--dup=1", "--dup=2", "--tail" }

    it("reads --name value, --name=value and a bare --name", function()
        assert.are.equal("/etc/s.toml", process.flag(argv, "config"))
        -- as a definition declares it
        assert.are.equal("/etc/s.toml", process.flag(argv, "--config"))
        assert.are.equal("8080", process.flag(argv, "-port"))
        assert.are.equal("8080", process.flag(argv, "port"))
        assert.is_true(process.flag(argv, "verbose"))
        assert.are.equal("/var/lib/s", process.flag(argv, "data.dir"))
        assert.are.equal("", process.flag(argv, "empty"))
        assert.are.equal("-5", process.flag(argv, "neg"))
        assert.is_true(process.flag(argv, "last"))
        assert.is_true(process.flag(argv, "tail"))
        assert.are.equal("2", process.flag(argv, "dup"))
    end)

    it("is nil for a flag that is absent, a value, the program, or after --", function()
        assert.is_nil(process.flag(argv, "missing"))
        assert.is_nil(process.flag(argv, "8080"))
        assert.is_nil(process.flag(argv, "port=8080"))
        assert.is_nil(process.flag({ "--config", "x" }, "nothing"))
        assert.is_nil(process.flag({ "--x" }, "x"))
        assert.is_nil(process.flag({ "s", "--", "--x=1" }, "x"))
        assert.is_nil(process.flag({}, "x"))
    end)

    it("gives every value of a flag given several times, in order", function()
        local cmd = { "python", "-m", "synapse.app.homeserver", "--config-path=/a.yaml", "-c",
                      "/b.yaml", "--config-path", "/conf.d/", "--", "--config-path=/no" }
        local last, all = process.flag(cmd, "--config-path")
        assert.are.equal("/conf.d/", last)
        assert.are.same({ "/a.yaml", "/conf.d/" }, all)
        assert.are.same({ "/b.yaml" }, select(2, process.flag(cmd, "-c")))
        assert.are.same({}, select(2, process.flag(cmd, "--missing")))
    end)
end)
