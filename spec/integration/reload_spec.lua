-- Hot reload: the running daemon picks up edited scripts; a broken edit breaks nothing.
-- Each case checks which reports reached a real endpoint on 127.0.0.1. #integration
local json = require("phonehome.json")
local h = require("support.helper")

-- A product script whose one field is `value` (Lua source of the value function's body).
local function script(name, body, extra)
    return h.script(name,
        '{ name = "n", type = "int", description = "d", value = function() ' .. body .. " end },",
        'schedule = { first = "100ms", interval = "300ms" },' .. (extra or ""))
end

local function values(ep, path)
    local out = {}
    for _, r in ipairs(ep.requests()) do
        if not path or r.path == path then out[#out + 1] = json.decode(r.body).n end
    end
    return out
end

local function last(t) return t[#t] end

describe("hot reload #integration", function()
    local ep, d, scripts, data
    before_each(function()
        ep = h.endpoint("201")
        scripts, data = h.tmpdir(), h.tmpdir()
        h.write(scripts .. "/a.lua", script("a", "return 1"))
        h.write(scripts .. "/b.lua", script("b", "return 100"))
        d = h.spawn({ "run", "--scripts", scripts, "--data-dir", data, "--endpoint", ep.url })
        h.wait_for(d.err, 'product=a msg="report sent"')
    end)
    after_each(function()
        h.sh("kill -TERM " .. d.pid)
        local ok, code = pcall(h.exit_code, d)
        h.sh("kill -9 " .. d.pid .. " 2>/dev/null")   -- never left running, whatever happened
        assert.is_true(ok, code)
        assert.are.equal(0, code)
        -- no other product was disturbed: b sent its own value all along
        local b = values(ep, "/v1/report/b")
        assert.is_true(#b >= 2)
        for _, v in ipairs(b) do assert.are.equal(100, v) end
        ep.stop()
        h.cleanup()
    end)

    local function reloaded(count)
        h.wait_for(d.err, "product=a msg=reloaded.-reloads=" .. count)
    end

    local function status()
        return json.decode(h.run({ "status", "a", "--scripts", scripts, "--data-dir", data,
                                   "--json" }).out)
    end

    it("picks up a file written in place", function()
        h.write(scripts .. "/a.lua", script("a", "return 2"))
        reloaded(1)
        h.sh("sleep 0.7")
        assert.are.equal(2, last(values(ep, "/v1/report/a")))
        assert.are.equal(1, status().reloads)
    end)

    it("picks up a file written aside and renamed over, ignoring editor temporaries", function()
        h.write(scripts .. "/.a.lua.swp", "garbage")
        h.write(scripts .. "/a.lua~", "garbage")
        h.write(scripts .. "/4913", "")
        h.write(scripts .. "/a.lua.tmp", script("a", "return 3"))
        h.sh("mv " .. scripts .. "/a.lua.tmp " .. scripts .. "/a.lua")
        reloaded(1)
        h.sh("sleep 0.7")
        assert.are.equal(3, last(values(ep, "/v1/report/a")))
        assert.is_nil(h.slurp(d.err):find("swp", 1, true))
    end)

    it("stops a product whose file is deleted and starts it again when it is back", function()
        h.sh("rm " .. scripts .. "/a.lua")
        h.wait_for(d.err, 'product=a msg="stopped: its script was removed"')
        h.sh("sleep 0.2")
        local before = #values(ep, "/v1/report/a")
        h.sh("sleep 0.7")
        assert.are.equal(before, #values(ep, "/v1/report/a"))
        assert.is_table(json.decode(h.slurp(data .. "/a/state.json")))
        h.write(scripts .. "/a.lua", script("a", "return 4"))
        h.wait_for(d.err, "product=a msg=started.*product=a msg=started")
        h.sh("sleep 0.7")
        assert.are.equal(4, last(values(ep, "/v1/report/a")))
    end)

    it("starts a product added to the directory, with its disclosure", function()
        h.write(scripts .. "/c.lua", script("c", "return 7"))
        h.wait_for(d.err, "product=c msg=started")
        h.sh("sleep 0.6")
        assert.are.equal(7, last(values(ep, "/v1/report/c")))
    end)

    local broken = {
        { "a syntax error, then its fix", "return (", "a%.lua:10: .*unexpected symbol" },
        { "a runtime error in a field", "error('no value')", "a%.lua:10: field 'n': no value" },
        { "an infinite loop in a field", "while true do end",
          "field 'n': script exceeded its time limit" },
        { "a memory bomb in a field", "local s = 'x' while true do s = s .. s end",
          "field 'n': script exceeded its memory limit" },
        { "an error that cannot be printed",
          "error(setmetatable({}, { __tostring = function() return {} end }))",
          "field 'n': %(error object is a table value%)" },
        { "one pattern match that never ends",
          "return #tostring(string.find(string.rep('a', 5000), string.rep('.-', 20) .. 'b'))",
          "field 'n': script exceeded its time limit" },
    }
    for _, case in ipairs(broken) do
        it("keeps the running version on " .. case[1], function()
            h.write(scripts .. "/a.lua", script("a", case[2]))
            h.wait_for(d.err, 'product=a msg="reload failed; the running version stays" error=.-'
                .. case[3])
            h.sh("sleep 0.7")
            assert.are.equal(1, last(values(ep, "/v1/report/a")))
            assert.matches(case[3], status().reload_error)
            h.write(scripts .. "/a.lua", script("a", "return 5"))
            reloaded(1)
            h.sh("sleep 0.7")
            assert.are.equal(5, last(values(ep, "/v1/report/a")))
            assert.is_nil(status().reload_error)
        end)
    end

    it("keeps the running version on an error that cannot be printed, at load", function()
        h.write(scripts .. "/a.lua", "error(setmetatable({}, { __tostring = function() "
            .. "return {} end }))\n" .. script("a", "return 6"))
        h.wait_for(d.err, 'product=a msg="reload failed; the running version stays" '
            .. "error=.-a%.lua: %(error object is a table value%)")
        h.sh("sleep 0.7")
        assert.are.equal(1, last(values(ep, "/v1/report/a")))
    end)

    it("keeps the running version on an infinite loop at load", function()
        h.write(scripts .. "/a.lua", "while true do end\n" .. script("a", "return 6"))
        h.wait_for(d.err, 'product=a msg="reload failed; the running version stays" '
            .. "error=.-a%.lua:1: script exceeded its time limit")
        h.sh("sleep 0.7")
        assert.are.equal(1, last(values(ep, "/v1/report/a")))
    end)

    it("reloads once for twenty quick writes", function()
        for i = 1, 20 do
            h.write(scripts .. "/a.lua", script("a", "return " .. (10 + i)))
        end
        reloaded(1)
        h.sh("sleep 0.8")
        local _, n = h.slurp(d.err):gsub("product=a msg=reloaded", "")
        assert.are.equal(1, n)
        assert.are.equal(30, last(values(ep, "/v1/report/a")))
    end)

    it("applies a changed schedule from the next due time", function()
        h.write(scripts .. "/a.lua", h.script("a", '{ name = "n", type = "int", description = "d", '
            .. "value = function() return 8 end },",
            'schedule = { first = "100ms", interval = "50ms" },'))
        reloaded(1)
        h.sh("sleep 0.5")
        local a = {}
        for _, r in ipairs(ep.requests()) do
            if r.path == "/v1/report/a" and json.decode(r.body).n == 8 then a[#a + 1] = r.time end
        end
        assert.is_true(#a >= 4, #a .. " reports at the new interval")
    end)

    it("stops sending at once, spool included, when the product is turned off", function()
        h.write(scripts .. "/a.lua", script("a", "return 9", 'optout = { default = "off" },'))
        reloaded(1)
        h.wait_for(d.err, "product=a msg=reloaded.-sending=false")
        local before = #values(ep, "/v1/report/a")
        h.sh("sleep 0.8")
        assert.are.equal(before, #values(ep, "/v1/report/a"))
        assert.matches('product=a msg="not sending"', h.slurp(d.err))
    end)
end)

describe("hot reload of the endpoint #integration", function()
    after_each(h.cleanup)

    it("sends to a changed endpoint from the next report on", function()
        local one, two = h.endpoint("201"), h.endpoint("201")
        local scripts, data = h.tmpdir(), h.tmpdir()
        local function write(url)
            h.write(scripts .. "/a.lua",
                (script("a", "return 1"):gsub("http://127%.0%.0%.1:9/report", url)))
        end
        write(one.url .. "/r")
        local d = h.spawn({ "run", "--scripts", scripts, "--data-dir", data })
        h.wait_for(d.err, 'msg="report sent"')
        write(two.url .. "/r")
        h.wait_for(d.err, "msg=reloaded")
        h.sh("sleep 0.2")
        local sent_to_one = #one.requests()
        h.sh("sleep 0.7")
        h.sh("kill -TERM " .. d.pid)
        assert.are.equal(0, h.exit_code(d))
        assert.are.equal(sent_to_one, #one.requests())
        assert.is_true(#two.requests() >= 2)
        one.stop()
        two.stop()
    end)
end)
