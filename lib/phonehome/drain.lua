-- A graceful stop: wait, without blocking the loop, until nothing is in flight or a
-- grace period has passed, then finish.
local core = require("phonehome.core")

local M = {}

-- drain(grace_seconds, idle, finish): polls idle() every 20 ms; calls finish(timed_out)
-- once it is true or the grace is over.
function M.drain(grace, idle, finish)
    local deadline = core.monotonic() + grace
    local function wait()
        if idle() then
            finish(false)
        elseif core.monotonic() >= deadline then
            finish(true)
        else
            core.timer(20, wait)
        end
    end
    wait()
end

return M
