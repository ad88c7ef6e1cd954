-- The delivery section of a definition: retries, backoff, timeouts and spool bounds with
-- their defaults; and what they mean for one report: the URL it goes to and whether it
-- may, the bodies it is sent as, how long to wait before a retry, and a URL fit for a log.
local duration = require("phonehome.duration")
local ga4 = require("phonehome.base.ga4")
local json = require("phonehome.json")
local schema = require("phonehome.definition.schema")

local M = {}

local delivery_keys = { retries = true, retry_on = true, backoff = true, timeout = true,
                        connect_timeout = true, spool_reports = true, spool_bytes = true,
                        log_report = true, user_agent = true, headers = true, success = true,
                        drop_failed = true, endpoint_setting = true }

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
    for _, k in ipairs({ "log_report", "drop_failed" }) do
        if d[k] ~= nil and type(d[k]) ~= "boolean" then
            problem("delivery." .. k, k .. " must be a boolean")
        end
    end
    if d.user_agent ~= nil and (type(d.user_agent) ~= "string" or d.user_agent:find("%c")) then
        problem("delivery.user_agent", "user_agent must be one line of text")
    end
    d.headers = d.headers or {}
    for i, hd in ipairs(type(d.headers) == "table" and d.headers or {}) do
        if type(hd) ~= "string" or not hd:match("^[%w%-]+: [^%c]*$")
            or hd:lower():match("^content%-type:") or hd:lower():match("^idempotency%-key:") then
            problem("delivery.headers", "headers[" .. i .. "] must be \"Name: value\" "
                .. "(Content-Type and Idempotency-Key are phonehome's)")
        end
    end
    d.success = d.success or "2xx"
    if d.success ~= "2xx" and d.success ~= "json" then
        problem("delivery.success", "success must be \"2xx\" or \"json\" (a 2xx with a JSON "
            .. "body)")
    end
    if d.endpoint_setting ~= nil then
        local st = def.settings_by_name and def.settings_by_name[d.endpoint_setting]
        if not st or st.type ~= "string" then
            problem("delivery.endpoint_setting", "endpoint_setting must name a declared string "
                .. "setting")
        end
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

-- Hosts plain http may go to without allow_http, as libcurl reports them: numeric IPv4
-- in dotted form, IPv6 in brackets.
function M.loopback(host)
    host = host:lower()
    return host == "localhost" or host:match("^127%.%d+%.%d+%.%d+$") ~= nil or host == "[::1]"
end

-- Every value of a query string hidden, its names kept.
local function redact_query(query)
    return (query:gsub("[^&]+", function(item)
        local k = item:match("^([^=]*)=")
        return k and (k .. "=REDACTED") or "REDACTED"
    end))
end

-- redact(url [, parts]) -> the URL fit for a log, the state or an error: any user and
-- password, every query value and the fragment hidden. parts: the URL as core.url_parse
-- reads it; without them (or for a URL it cannot read) the text is cut by hand, hiding
-- everything up to the last @ before the path.
function M.redact(url, parts)
    local scheme, userinfo, host, path, query, fragment
    if type(parts) == "table" and parts.host then
        scheme, host, path = parts.scheme .. "://", parts.host, parts.path or ""
        if parts.port then host = host .. ":" .. parts.port end
        userinfo = parts.user ~= nil or parts.password ~= nil
        query, fragment = parts.query, parts.fragment
    else
        local rest
        scheme, rest = url:match("^(%a[%w+.%-]*:/+)(.*)$")
        if not scheme then scheme, rest = "", url end
        local cut = rest:find("[/?#]") or #rest + 1
        host, path = rest:sub(1, cut - 1), rest:sub(cut)
        userinfo = host:find("@", 1, true) ~= nil
        host = host:match("[^@]*$")
        path, query, fragment = path:match("^([^?#]*)(%??[^#]*)(#?.*)$")
        query = query ~= "" and query:sub(2) or nil
        fragment = fragment ~= "" and fragment or nil
    end
    return scheme .. (userinfo and "REDACTED@" or "") .. host .. path
        .. (query and ("?" .. redact_query(query)) or "") .. (fragment and "#REDACTED" or "")
end

local function escape(s)
    return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- url(def, settings, base) -> the URL a report goes to, or nil, reason. --endpoint BASE
-- sends every product to BASE/v1/report/PRODUCT; else the setting PRODUCT.endpoint; else
-- the product's own (the setting delivery.endpoint_setting names, such as Synapse's
-- report_stats_endpoint read from its config); else the script's; GA4 with its
-- measurement id and secret.
function M.url(def, settings, base)
    local name = def.delivery and def.delivery.endpoint_setting
    local own = name and settings[name]
    local url = base and (base:gsub("/+$", "") .. "/v1/report/" .. def.name)
        or settings.endpoint or own or def.endpoint
    if def.format == "ga4" and not base and not settings.endpoint then
        local id, secret = settings["tracking_id.id"], settings["tracking_id.secret"]
        if not id or not secret then
            return nil, "no GA4 measurement id: set " .. def.name .. ".tracking_id.id and "
                .. def.name .. ".tracking_id.secret"
        end
        url = url .. (url:find("?", 1, true) and "&" or "?") .. "measurement_id=" .. escape(id)
            .. "&api_secret=" .. escape(secret)
    end
    return url
end

-- target(def, settings, base, parse) -> url, parts; or nil, reason. The URL of url(),
-- read by parse (core.url_parse: libcurl's parser, the caller's, so that this module
-- loads no libcurl) and returned as libcurl reads it, with its parts. Plain http leaves
-- the machine only where allow_http says so: the host judged is the one libcurl would
-- connect to, whatever comes before an @ or a colon.
function M.target(def, settings, base, parse)
    local url, err = M.url(def, settings, base)
    if not url then return nil, err end
    local parts, why = parse(url)
    if not parts or (parts.scheme ~= "http" and parts.scheme ~= "https") or not parts.host then
        return nil, "endpoint " .. M.redact(url, parts) .. " is not an http(s) URL"
            .. (why and (" (" .. why .. ")") or "")
    end
    if parts.scheme == "http" and not M.loopback(parts.host) and not settings.allow_http then
        return nil, "plain http to " .. parts.host .. " refused; use https, or set " .. def.name
            .. ".allow_http=true"
    end
    return parts.url, parts
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

-- user_agent(d, report, default) -> the User-Agent of a report: the definition's, each
-- {path} replaced by the report's field at that dotted path ("Synapse/{server_version}");
-- a field the report lacks leaves out the placeholder and a "/" before it ("Synapse").
-- Without one, phonehome's own (default).
function M.user_agent(d, report, default)
    if not d.user_agent then return default end
    local text = d.user_agent:gsub("(/?){([%w_%.%-]+)}", function(slash, path)
        local v = report
        for part in path:gmatch("[^%.]+") do v = type(v) == "table" and v[part] or nil end
        if type(v) == "string" or type(v) == "number" then
            return slash .. (tostring(v):gsub("%c", ""))
        end
        return ""
    end)
    return text
end

M.MAX_WAIT = 3600   -- seconds: no answer makes a product wait longer before a retry

-- wait(d, attempt, retry_after, random) -> the seconds to wait before attempt + 1: what
-- Retry-After asked for (seconds, as libcurl reads it), else the backoff doubled per
-- attempt with up to 25% jitter (random() in [0, 1)); never more than MAX_WAIT.
function M.wait(d, attempt, retry_after, random)
    local wait = retry_after
    if not wait or wait <= 0 then
        wait = (d.backoff / 1000) * 2 ^ math.min(attempt - 1, 62) * (1 + random() * 0.25)
    end
    return math.min(wait, M.MAX_WAIT)
end

return M
