-- Delivery of one report: the URL, the request(s), retries with backoff that honour
-- Retry-After. Runs inside a coroutine: waiting yields to the loop.
local core = require("phonehome.core")
local json = require("phonehome.json")
local log = require("phonehome.log")
local ga4 = require("phonehome.ga4")

local M = {}

M.active = {}   -- transfers in flight, for shutdown
M.USER_AGENT = "phonehome/" .. core.version

-- Waits seconds (a coroutine's sleep on the loop).
function M.sleep(seconds)
    local co = coroutine.running()
    core.timer(math.max(0, math.floor(seconds * 1000 + 0.5)), function()
        local ok, err = coroutine.resume(co)
        if not ok then log.error({ msg = "internal error", error = err }) end
    end)
    coroutine.yield()
end

-- One HTTP request; yields until it ends.
function M.request(opts)
    local co = coroutine.running()
    local req
    req = core.http(opts, function(res)
        M.active[req] = nil
        local ok, err = coroutine.resume(co, res)
        if not ok then log.error({ msg = "internal error", error = err }) end
    end)
    M.active[req] = true
    return coroutine.yield()
end

local function loopback(host)
    return host == "localhost" or host:match("^127%.%d+%.%d+%.%d+$") ~= nil or host == "[::1]"
end

-- The URL with the values of secret-looking query parameters and any password hidden.
function M.redact(url)
    url = url:gsub("^(https?://)[^/@]*@", "%1")
    return (url:gsub("([?&])([^=&]*)=([^&]*)", function(sep, k, v)
        local lk = k:lower()
        if lk:find("secret") or lk:find("key") or lk:find("token") or lk:find("pass") then
            v = "REDACTED"
        end
        return sep .. k .. "=" .. v
    end))
end

local function escape(s)
    return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- target(def, settings, base) -> url, or nil, reason. --endpoint BASE sends every product
-- to BASE/v1/report/PRODUCT; else the setting PRODUCT.endpoint; else the script's.
-- Plain http leaves the machine only where allow_http says so.
function M.target(def, settings, base)
    local url = base and (base:gsub("/+$", "") .. "/v1/report/" .. def.name)
        or settings.endpoint or def.endpoint
    local scheme, host = url:match("^(https?)://([^/:?#]+)")
    if url:match("^https?://%[::1%]") then scheme, host = url:match("^(https?)://(%[::1%])") end
    if not scheme then return nil, "endpoint " .. url .. " is not an http(s) URL" end
    if scheme == "http" and not loopback(host) and not settings.allow_http then
        return nil, "plain http to " .. host .. " refused; use https, or set " .. def.name
            .. ".allow_http=true"
    end
    if def.format == "ga4" and not base and not settings.endpoint then
        local id, secret = settings["tracking_id.id"], settings["tracking_id.secret"]
        if not id or not secret then
            return nil, "no GA4 measurement id: set " .. def.name .. ".tracking_id.id and "
                .. def.name .. ".tracking_id.secret"
        end
        url = url .. "?measurement_id=" .. escape(id) .. "&api_secret=" .. escape(secret)
    end
    return url
end

-- The bodies of a report: one, or for GA4 one per 25 events.
function M.bodies(def, body)
    if def.format ~= "ga4" then return { body } end
    local v = json.decode(body)
    if type(v) ~= "table" or type(v.events) ~= "table" or #v.events <= ga4.MAX_EVENTS then return { body } end
    local out = {}
    for i = 1, #v.events, ga4.MAX_EVENTS do
        local chunk = {}
        for j = i, math.min(i + ga4.MAX_EVENTS - 1, #v.events) do chunk[#chunk + 1] = v.events[j] end
        out[#out + 1] = json.encode({ client_id = v.client_id, events = chunk })
    end
    return out
end

-- Seconds a Retry-After header asks for (delta seconds or an HTTP date), capped.
function M.retry_after(value, now)
    if not value then return nil end
    local n = tonumber(value)
    if n then return math.min(math.max(n, 0), 3600) end
    local d, mon, y, hh, mm, ss = value:match("%a+, (%d+) (%a+) (%d+) (%d+):(%d+):(%d+) GMT")
    local months = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8,
                     Sep = 9, Oct = 10, Nov = 11, Dec = 12 }
    if not d or not months[mon] then return nil end
    local t = os.time({ year = tonumber(y), month = months[mon], day = tonumber(d), hour = tonumber(hh),
                        min = tonumber(mm), sec = tonumber(ss), isdst = false })
    -- os.time reads the table as local time; correct by the zone's offset
    local offset = os.time(os.date("*t", t)) - os.time(os.date("!*t", t))
    return math.min(math.max(t + offset - now, 0), 3600)
end

local function member(list, v)
    for _, x in ipairs(list) do if x == v then return true end end
    return false
end

-- send(p, entry, opts) -> "delivered" | "rejected" | "failed" | "stopped", detail.
-- p: { name, def, settings }; opts: base, scale, stopping (function), sending (function).
function M.send(p, entry, opts)
    local url, err = M.target(p.def, p.settings, opts.base)
    if not url then
        log.error({ product = p.name, msg = "cannot send", error = err })
        return "failed", err
    end
    local d = p.def.delivery
    local bodies = M.bodies(p.def, entry.body)
    for i, body in ipairs(bodies) do
        local key = #bodies > 1 and (entry.key .. "-" .. i) or entry.key
        local attempt = 0
        while true do
            if opts.stopping() then return "stopped", "shutting down" end
            if not opts.sending() then return "stopped", "turned off" end
            attempt = attempt + 1
            local res = M.request({
                url = url, method = p.def.method, body = body, user_agent = M.USER_AGENT,
                headers = { "Content-Type: application/json", "Idempotency-Key: " .. key },
                connect_timeout = d.connect_timeout / 1000, timeout = d.timeout / 1000,
                ca_file = p.settings.ca_file,
            })
            local fields = { product = p.name, url = M.redact(url), attempt = attempt, bytes = #body }
            local retry
            if res.error then
                fields.msg, fields.error = "transfer failed", res.error
                retry = res.error ~= "cancelled"
            elseif res.status >= 200 and res.status < 300 then
                fields.msg, fields.status = "report sent", res.status
                log.info(fields)
                break
            else
                fields.msg, fields.status = "endpoint refused the report", res.status
                fields.response = res.body:sub(1, 200)
                retry = member(d.retry_on, res.status)
                if not retry and res.status < 500 then
                    log.warn(fields)
                    return "rejected", "status " .. res.status
                end
            end
            if not retry or attempt > d.retries then
                log.warn(fields)
                return "failed", res.error or ("status " .. res.status)
            end
            local wait = (d.backoff / 1000) * 2 ^ (attempt - 1) * (1 + math.random() * 0.25)
            wait = M.retry_after(res.retry_after, os.time()) or wait
            fields.retry_in = string.format("%.3fs", wait / opts.scale)
            log.warn(fields)
            M.sleep(wait / opts.scale)
        end
    end
    return "delivered"
end

return M
