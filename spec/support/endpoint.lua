-- A scripted HTTP endpoint for the daemon's specs: a real server on 127.0.0.1 (the
-- collector's own HTTP code) that answers successive requests from a plan and logs each.
-- usage: lua5.4 spec/support/endpoint.lua BUILD DIR PLAN
-- PLAN: answers in order, the last repeated: "201", "400", "429/2" (Retry-After: 2),
-- "503/date:9999" (Retry-After: Fri, 31 Dec 9999 23:59:59 GMT), "301>URL" (Location: URL),
-- "200~" (a body that is not JSON).
-- Writes DIR/port, one line per request to DIR/requests: "n status key bytes path time",
-- and each request's body to DIR/body-N.
-- PLAN "serve:ROOT" answers as a product's API instead: GET or POST /NAME gives the file
-- ROOT/NAME (200, JSON or text by its extension) or 404; when ROOT/.auth exists, a request
-- whose Authorization header is not its first line gets 401.
local build, dir, plan = arg[1], arg[2], arg[3]
package.cpath = build .. "/lib/?.so;" .. package.cpath
local core = require("phonehome.core")

local answers = {}
for item in (plan:match("^serve:") and "" or plan):gmatch("[^,]+") do
    local text = item:match("~$") ~= nil
    item = item:gsub("~$", "")
    local status, after, location = item:match("^(%d+)/?([^>]*)>?(.*)$")
    local year = after:match("^date:(%d+)$")
    if year then after = "Fri, 31 Dec " .. year .. " 23:59:59 GMT" end
    local headers = {}
    if after ~= "" then headers["Retry-After"] = after end
    if location ~= "" then headers["Location"] = location end
    answers[#answers + 1] = { status = tonumber(status), headers = headers, text = text }
end

local root = plan:match("^serve:(.*)$")
local function read(path)
    local f = io.open(path, "rb")
    if not f then return nil end
    local text = f:read("a")
    f:close()
    return text
end

-- A product's API: its files.
local function serve(req)
    local auth = read(root .. "/.auth")
    if auth and req.headers["authorization"] ~= auth:match("[^\n]*") then
        return 401, '{"error":"unauthorized"}', "application/json", {}
    end
    local name = req.path:match("^/([%w_%-%.]+)$")
    local body = name and read(root .. "/" .. name)
    if not body then return 404, '{"error":"not found"}', "application/json", {} end
    return 200, body, name:match("%.json$") and "application/json" or "text/plain", {}
end

local n = 0
local log = assert(io.open(dir .. "/requests", "a"))
local server = assert(core.httpd({ listen = "127.0.0.1:0", handler = function(req)
    n = n + 1
    local a = answers[math.min(n, #answers)] or {}
    local status, body, ctype, headers
    if root then
        status, body, ctype, headers = serve(req)
    else
        status, body, ctype, headers = a.status, '{"answer":' .. a.status .. "}",
            "application/json", a.headers
        if a.text then body, ctype = "thanks", "text/plain" end
    end
    local hf = io.open(dir .. "/headers-" .. n, "w")
    for k, v in pairs(req.headers) do hf:write(k, ": ", v, "\n") end
    hf:close()
    local b = io.open(dir .. "/body-" .. n, "w")
    b:write(req.body)
    b:close()
    log:write(string.format("%d %d %s %d %s %.3f\n", n, status,
                            req.headers["idempotency-key"] or "-",
                            #req.body, req.path, core.time()))
    log:flush()
    return status, body, ctype, headers
end }))
local f = assert(io.open(dir .. "/port.tmp", "w"))
f:write(server:port())
f:close()
os.rename(dir .. "/port.tmp", dir .. "/port")
local stop = function() server:close() core.stop() end
local signals = { core.signal("SIGTERM", stop), core.signal("SIGINT", stop) }
core.run()
for _, s in ipairs(signals) do s:close() end
