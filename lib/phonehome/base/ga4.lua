-- The Google Analytics 4 Measurement Protocol: the limits GA4 puts on a request, checked
-- by the collector as GA4 would (GA4 itself answers 2xx and drops what breaks them).
local M = {}

M.MAX_EVENTS = 25
M.MAX_PARAMS = 25
M.MAX_NAME = 40
M.MAX_VALUE = 100
M.MAX_BODY = 130000

local reserved = { "_", "firebase_", "ga_", "google_" }

local function name_problem(kind, name)
    if type(name) ~= "string" then return kind .. " name must be a string" end
    if #name > M.MAX_NAME then
        return string.format("%s name %q is longer than %d characters", kind, name, M.MAX_NAME)
    end
    for _, p in ipairs(reserved) do
        if name:sub(1, #p) == p then
            return string.format("%s name %q uses the reserved prefix %q", kind, name, p)
        end
    end
    if not name:match("^[%a][%w_]*$") then
        return string.format("%s name %q must start with a letter and hold only letters, "
            .. "digits and _", kind, name)
    end
end

-- check(body, text) -> the list of reasons GA4 would reject this request for ({}: none).
function M.check(body, text)
    local reasons = {}
    local function add(r) reasons[#reasons + 1] = r end
    if text and #text >= M.MAX_BODY then
        add("body is " .. #text .. " bytes, GA4 takes under 130000")
    end
    if type(body) ~= "table" then return { "body must be a JSON object" } end
    if type(body.client_id) ~= "string" or body.client_id == "" then
        add("client_id must be a non-empty string")
    end
    local events = body.events
    if type(events) ~= "table" or #events == 0 then
        add("events must be a non-empty array")
        return reasons
    end
    if #events > M.MAX_EVENTS then
        add(string.format("%d events, GA4 takes at most %d a request", #events, M.MAX_EVENTS))
    end
    for i, e in ipairs(events) do
        local where = "events[" .. i .. "]: "
        if type(e) ~= "table" then
            add(where .. "event must be an object")
        else
            local p = name_problem("event", e.name)
            if p then add(where .. p) end
        end
        if type(e) == "table" and e.params ~= nil then
            local n = 0
            for k, v in pairs(type(e.params) == "table" and e.params or {}) do
                n = n + 1
                local pp = name_problem("param", k)
                if pp then add(where .. pp) end
                if type(v) == "string" and #v > M.MAX_VALUE then
                    add(string.format("%sparam %q is longer than %d characters", where, k,
                        M.MAX_VALUE))
                end
            end
            if n > M.MAX_PARAMS then
                add(string.format("%s%d params, GA4 takes at most %d", where, n, M.MAX_PARAMS))
            end
        end
    end
    return reasons
end

return M
