-- The delivery section of a definition: retries, backoff, timeouts and spool bounds with
-- their defaults; and what they mean for one report: the URL it goes to, the bodies it is
-- sent as, how long a Retry-After asks to wait, and a URL fit for a log.
local duration = require("phonehome.duration")
local ga4 = require("phonehome.base.ga4")
local json = require("phonehome.json")
local schema = require("phonehome.definition.schema")

local M = {}

local delivery_keys = { retries = true, retry_on = true, backoff = true, timeout = true,
                        connect_timeout = true, spool_reports = true, spool_bytes = true,
                        log_report = true }

-- Retries, backoff and timeouts of delivery, with their defaults.
function M.check(def, problem)
    local d = def.delivery or {}
    if type(d) ~= "table" then
        problem("delivery", "delivery must be a table")
        d = {}
    end
    schema.unknown_keys(d, delivery_keys, problem, "delivery", true)
    d.retries = d.retries or 3
    if math.type(d.retries) ~= "integer" or d.retries < 0 or d.retries > 20 then
        problem("delivery.retries", "retries must be an integer from 0 to 20")
    end
    if d.log_report ~= nil and type(d.log_report) ~= "boolean" then
        problem("delivery.log_report", "log_report must be a boolean")
    end
    d.retry_on = d.retry_on or { 429, 502, 503, 504 }
    for _, code in ipairs(type(d.retry_on) == "table" and d.retry_on or {}) do
        if math.type(code) ~= "integer" or code < 400 or code > 599 then
            problem("delivery.retry_on", "retry_on must list HTTP statuses from 400 to 599")
        end
    end
    for k, default in pairs({ spool_reports = 100, spool_bytes = 10 * 1024 * 1024 }) do
        d[k] = d[k] or default
        if math.type(d[k]) ~= "integer" or d[k] < 1 then
            problem("delivery." .. k, k .. " must be a positive integer")
        end
    end
    for k, default in pairs({ backoff = 1000, timeout = 30000, connect_timeout = 10000 }) do
        if d[k] == nil then
            d[k] = default
        else
            local ms, err = duration.parse(d[k], true, "delivery." .. k)
            if not ms then problem("delivery." .. k, err) end
            d[k] = ms
        end
    end
    def.delivery = d
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
    if type(v) ~= "table" or type(v.events) ~= "table" or #v.events <= ga4.MAX_EVENTS then
        return { body }
    end
    local out = {}
    for i = 1, #v.events, ga4.MAX_EVENTS do
        local chunk = {}
        for j = i, math.min(i + ga4.MAX_EVENTS - 1, #v.events) do
            chunk[#chunk + 1] = v.events[j]
        end
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
    local t = os.time({ year = tonumber(y), month = months[mon], day = tonumber(d),
                        hour = tonumber(hh), min = tonumber(mm), sec = tonumber(ss),
                        isdst = false })
    -- os.time reads the table as local time; correct by the zone's offset
    local offset = os.time(os.date("*t", t)) - os.time(os.date("!*t", t))
    return math.min(math.max(t + offset - now, 0), 3600)
end

return M
