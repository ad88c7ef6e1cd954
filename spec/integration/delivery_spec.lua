-- Delivery as a product does it: its User-Agent (with its version from the report), its
-- extra headers, success only on a 2xx with a JSON body, a failed report dropped rather
-- than resent, and the endpoint from the product's own config. #integration
local h = require("support.helper")

local function product(delivery, extra, fields)
    local dir = h.tmpdir()
    h.write(dir .. "/p.lua", h.script("p", fields or '{ name = "server_version", '
        .. 'type = "string", description = "d", value = "1.2.3" },',
        "delivery = " .. delivery .. ",\n" .. (extra or "")))
    return dir
end

local function once(dir, ep, data)
    return h.run({ "run", "--once", "--scripts", dir, "--data-dir", data or h.tmpdir(),
                   "--set", "p.endpoint=" .. ep.url .. "/stats" }, nil, 60)
end

describe("delivery as the product does it #integration", function()
    after_each(h.cleanup)

    it("sends the product's User-Agent and headers", function()
        local ep = h.endpoint("200")
        local dir = product('{ user_agent = "Product/{server_version} Lib/{missing}", '
            .. 'headers = { "Accept: application/json" } }')
        local r = once(dir, ep)
        assert.are.equal(0, r.code, r.err)
        local req = ep.requests()[1]
        assert.matches("user%-agent: Product/1%.2%.3 Lib\n", req.headers)
        assert.matches("accept: application/json\n", req.headers)
        assert.matches("content%-type: application/json\n", req.headers)
        ep.stop()
    end)

    it("counts only a 2xx with a JSON body as sent when the product does, and drops a "
       .. "failed report when the product does not resend", function()
        local ep = h.endpoint("200~")
        local data = h.tmpdir()
        local dir = product('{ success = "json", drop_failed = true, retries = 0 }')
        local r = once(dir, ep, data)
        assert.are.equal(1, r.code)
        assert.matches('msg="endpoint answered without JSON" .-status=200', r.err)
        assert.matches('msg="report dropped: the product does not resend"', r.err)
        assert.are.same({}, h.ls(data .. "/p/spool"))
        ep.stop()
        -- without drop_failed, the report stays for the next run
        ep = h.endpoint("200~")
        dir = product('{ success = "json", retries = 0 }')
        data = h.tmpdir()
        r = once(dir, ep, data)
        assert.are.equal(1, r.code)
        assert.are.equal(1, #h.ls(data .. "/p/spool"))
        ep.stop()
    end)

    it("sends to the endpoint the product's own config names", function()
        local ep = h.endpoint("201")
        local cfg = h.tmpdir() .. "/product.yaml"
        h.write(cfg, "report_stats_endpoint: " .. ep.url .. "/own\n")
        local dir = product('{ endpoint_setting = "report_stats_endpoint" }', string.format([[
sources = { { name = "cfg", kind = "yaml", description = "d", path = %q } },
settings = { { name = "report_stats_endpoint", type = "string", description = "d",
               source = "cfg", key = "report_stats_endpoint" } },]], cfg),
            '{ name = "n", type = "int", description = "d", value = 1 },')
        local r = h.run({ "run", "--once", "--scripts", dir, "--data-dir", h.tmpdir() }, nil, 60)
        assert.are.equal(0, r.code, r.err)
        assert.are.equal("/own", ep.requests()[1].path)
        ep.stop()
    end)
end)
