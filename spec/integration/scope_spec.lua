-- What a script can see: only the environment variables it declares, the same inputs in
-- `show` as in a real run, and the target process as it is at each build. #integration
local json = require("phonehome.json")
local h = require("support.helper")

local function product(fields, extra)
    local dir = h.tmpdir()
    h.write(dir .. "/t.lua", h.script("t", fields, extra))
    return dir
end

-- A process that runs until killed: its pid.
local function server()
    return tonumber(h.sh("sleep 600 >/dev/null 2>&1 & echo $!"))
end

describe("a script's view #integration", function()
    after_each(h.cleanup)

    it("reads only the environment variables it declares, and docs lists them", function()
        local dir = product('{ name = "a", type = "string", null = true, description = "d", '
            .. 'value = function(ctx) return ctx.getenv("T_DECLARED") end },'
            .. '{ name = "b", type = "string", null = true, description = "d", '
            .. 'value = function(ctx) return ctx.getenv("HOME") end },',
            'environment = { "T_DECLARED" },')
        local r = h.run({ "show", "t", "--scripts", dir, "--data-dir", dir .. "/data" },
                        { T_DECLARED = "yes" })
        assert.are.equal(0, r.code, r.err)
        local out = json.decode(r.out)
        assert.are.equal("yes", out.a)
        assert.are.equal(json.null, out.b)
        -- (logfmt escapes the quotes)
        assert.matches("field 'b': environment variable \\\"HOME\\\" is not declared", r.err)
        r = h.run({ "docs", "t", "--scripts", dir })
        assert.matches("## Environment\n\nVariables the script reads %(no other can be read%):\n\n"
            .. "%- `T_DECLARED`", r.out)
        dir = product('{ name = "a", type = "int", description = "d", value = 1 },',
                      'environment = { "not a name" },')
        r = h.run({ "check", "--scripts", dir })
        assert.are.equal(1, r.code)
        assert.matches("environment%[1%] is not a variable name", r.err)
    end)

    it("shows what a real run would send next, from the same state", function()
        -- a script that sends something else when it has no previous report, as a script
        -- telling show from a real run would
        local dir = product('{ name = "seen", type = "bool", description = "d", '
            .. "value = function(ctx) return ctx.previous ~= nil end },"
            .. '{ name = "last", type = "bool", description = "d", '
            .. "value = function(ctx) return ctx.last_sent ~= nil end },")
        local data = h.tmpdir()
        local ep = h.endpoint("201")
        local r = h.run({ "run", "--once", "--scripts", dir, "--data-dir", data, "--endpoint",
                          ep.url })
        assert.are.equal(0, r.code, r.err)
        r = h.run({ "show", "t", "--scripts", dir, "--data-dir", data })
        assert.are.equal(0, r.code, r.err)
        assert.are.same({ seen = true, last = true }, json.decode(r.out))
        ep.stop()
    end)

    it("reads the pid file at each build and fails only the fields that use a gone process",
       function()
        local dir = product('{ name = "pid", type = "int", null = true, description = "d", '
            .. "value = function(ctx) return ctx.process.pid end },"
            .. '{ name = "n", type = "int", description = "d", value = 1 },')
        local pidfile = h.tmpdir() .. "/server.pid"
        local first = server()
        h.write(pidfile, first .. "\n")
        local ep = h.endpoint("201")
        local d = h.spawn({ "run", "--scripts", dir, "--data-dir", h.tmpdir(), "--endpoint",
                            ep.url, "--time-scale", "3600", "--pidfile", pidfile })
        -- waits for a report whose pid is want (json.null: none), returns all so far
        local function until_pid(want)
            for _ = 1, 1500 do
                local reqs = ep.requests()
                local last = reqs[#reqs] and json.decode(reqs[#reqs].body)
                if last and last.pid == want then return reqs end
                h.sh("sleep 0.02")
            end
            error("no report with pid " .. tostring(want))
        end
        until_pid(first)
        -- the server restarts under another pid
        h.sh("kill " .. first)
        local second = server()
        h.write(pidfile, second .. "\n")
        until_pid(second)
        -- then it is gone, its pid file left behind
        h.sh("kill " .. second)
        local reqs = until_pid(json.null)
        h.sh("kill -TERM " .. d.pid)
        assert.are.equal(0, h.exit_code(d))
        ep.stop()
        -- every report was built, the process fields of each from the process of the time
        local order = {}
        for _, r in ipairs(reqs) do
            local body = json.decode(r.body)
            assert.are.equal(1, body.n)
            if order[#order] ~= body.pid then order[#order + 1] = body.pid end
        end
        assert.are.same({ first, second, json.null },
                        { order[1], order[#order - 1], order[#order] })
        assert.matches("field 'pid': no process with pid " .. second, h.slurp(d.err))
    end)
end)
