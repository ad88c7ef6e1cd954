-- A scripted HTTP endpoint for the daemon's specs: a real server on 127.0.0.1 (the
-- collector's own HTTP code) that answers successive requests from a plan and logs each.
-- usage: lua5.4 spec/support/endpoint.lua BUILD DIR PLAN
-- PLAN: answers in order, the last repeated: "201", "400", "429/2" (Retry-After: 2),
-- "503/date:9999" (Retry-After: Fri, 31 Dec 9999 23:59:59 GMT), "301>URL" (Location: URL).
-- Writes DIR/port, one line per request to DIR/requests: "n status key bytes path time",
-- and each request's body to DIR/body-N.
local build, dir, plan = arg[1], arg[2], arg[3]
package.cpath = build .. "/lib/?.so;" .. package.cpath
local core = require("phonehome.core")

local answers = {}
for item in plan:gmatch("[^,]+") do
    local status, after, location = item:match("^(%d+)/?([^>]*)>?(.*)$")
    local year = after:match("^date:(%d+)$")
    if year then after = "Fri, 31 Dec " .. year .. " 23:59:59 GMT" end
    local headers = {}
    if after ~= "" then headers["Retry-After"] = after end
    if location ~= "" then headers["Location"] = location end
    answers[#answers + 1] = { status = tonumber(status), headers = headers }
end

local n = 0
local log = assert(io.open(dir .. "/requests", "a"))
local server = assert(core.httpd({ listen = "127.0.0.1:0", handler = function(req)
    n = n + 1
    local a = answers[math.min(n, #answers)]
    local b = io.open(dir .. "/body-" .. n, "w")
    b:write(req.body)
    b:close()
    log:write(string.format("%d %d %s %d %s %.3f\n", n, a.status,
                            req.headers["idempotency-key"] or "-",
                            #req.body, req.path, core.time()))
    log:flush()
    return a.status, '{"answer":' .. a.status .. "}", "application/json", a.headers
end }))
local f = assert(io.open(dir .. "/port.tmp", "w"))
f:write(server:port())
f:close()
os.rename(dir .. "/port.tmp", dir .. "/port")
local stop = function() server:close() core.stop() end
local signals = { core.signal("SIGTERM", stop), core.signal("SIGINT", stop) }
core.run()
for _, s in ipairs(signals) do s:close() end
