-- Whether a product may send, and which switch decided it: DO_NOT_TRACK first, then the
-- product's own flags, environment variables and settings, then its default.
local M = {}

local falsy = { ["0"] = true, ["false"] = true, no = true, off = true, [""] = true }

-- DO_NOT_TRACK counts when set to any true value (1, true, yes, ...).
function M.do_not_track(getenv)
    local v = getenv("DO_NOT_TRACK")
    return v ~= nil and not falsy[v:lower()]
end

local function member(list, v, fold)
    for _, x in ipairs(list or {}) do
        if x == v or (fold and type(x) == "string" and type(v) == "string" and x:lower() == v:lower()) then
            return true
        end
    end
    return false
end

-- decide(def, getenv, settings, flags) -> sending (bool), reason (text), or nil, error
-- when an environment variable holds a value the product does not accept.
-- flags: the set of product flags given after `--`.
function M.decide(def, getenv, settings, flags)
    local o = def.optout
    if M.do_not_track(getenv) then return false, "DO_NOT_TRACK=" .. getenv("DO_NOT_TRACK") end
    for _, c in ipairs(o.flags) do
        if flags[c.name] then return false, "flag " .. c.name end
    end
    for _, c in ipairs(o.env) do
        local v = getenv(c.name)
        if v ~= nil then
            if member(c.off, v, true) then return false, c.name .. "=" .. v end
            if member(c.on, v, true) then return true, c.name .. "=" .. v end
            if c.on and #c.on > 0 then
                -- a product that lists both kinds of value refuses any other
                return nil, string.format("%s=%q is neither on (%s) nor off (%s)", c.name, v,
                    table.concat(c.on, ", "), table.concat(c.off or {}, ", "))
            end
        end
    end
    for _, c in ipairs(o.settings) do
        local v = settings[c.name]
        if v ~= nil then
            if member(c.off, v) then return false, "setting " .. c.name .. "=" .. tostring(v) end
            if member(c.on, v) then return true, "setting " .. c.name .. "=" .. tostring(v) end
        end
    end
    if o.default == "on" then return true, "default (on unless turned off)" end
    return false, "default (opt-in: not turned on)"
end

return M
