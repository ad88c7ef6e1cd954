-- The disclosure section of a definition: what an operator is told at start, in the
-- wording of whether the product sends, and the settings that start it quietly
-- (MongooseIM's report = true).
local schema = require("phonehome.definition.schema")

local M = {}

-- check(def, problem): disclosure = { on = text, off = text, quiet_when = { setting = value } }.
-- After the settings are checked.
function M.check(def, problem)
    local d = def.disclosure
    if type(d) ~= "table" or type(d.on) ~= "string" or type(d.off) ~= "string" then
        problem("disclosure", "disclosure must be { on = text, off = text }")
        return
    end
    schema.unknown_keys(d, { on = true, off = true, quiet_when = true }, problem, "disclosure")
    for name in pairs(type(d.quiet_when) == "table" and d.quiet_when or {}) do
        if not def.settings_by_name[name] then
            problem("disclosure.quiet_when", "'" .. tostring(name) .. "' is not a declared setting")
        end
    end
end

-- text(def, sending, settings) -> the notice to print at start, or nil when a setting
-- says to start quietly.
function M.text(def, sending, settings)
    for name, value in pairs(def.disclosure.quiet_when or {}) do
        if settings[name] == value then return nil end
    end
    return sending and def.disclosure.on or def.disclosure.off
end

return M
