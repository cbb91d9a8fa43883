-- Argo CD health check for molecule.ai/Workspace. Install it in argocd-cm as
--   resource.customizations.health.molecule.ai_Workspace: |
--     <this file>
-- It follows the controller's status contract: Stalled=True is terminal (Degraded), Synced=False means
-- the last reconcile failed (Degraded), Reconciling=True is Progressing (a StartFirst replacement keeps
-- Ready=True from the old container while the new one starts), Ready=True is Healthy, spec.suspend and
-- an Expired or Hibernated Workspace are Suspended, and anything not yet observed at the current
-- generation is Progressing.
local hs = { status = "Progressing", message = "Waiting for the controller" }
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
if obj.status.observedGeneration ~= nil and obj.metadata.generation ~= nil
    and obj.status.observedGeneration < obj.metadata.generation then
  hs.message = "Waiting for the controller to observe generation " .. obj.metadata.generation
  return hs
end
local ready, synced, stalled, reconciling
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then ready = c end
  if c.type == "Reconciling" then reconciling = c end
  if c.type == "Synced" then synced = c end
  if c.type == "Stalled" then stalled = c end
end
if stalled ~= nil and stalled.status == "True" then
  return { status = "Degraded", message = (stalled.reason or "") .. ": " .. (stalled.message or "") }
end
if synced ~= nil and synced.status == "False" then
  return { status = "Degraded", message = (synced.reason or "") .. ": " .. (synced.message or "") }
end
if obj.spec ~= nil and obj.spec.suspend == true then
  return { status = "Suspended", message = "spec.suspend is true" }
end
if ready ~= nil and ready.status == "False" and (ready.reason == "Expired" or ready.reason == "Hibernated") then
  return { status = "Suspended", message = ready.reason .. ": " .. (ready.message or "") }
end
if reconciling ~= nil and reconciling.status == "True" then
  return { status = "Progressing", message = (reconciling.reason or "") .. ": " .. (reconciling.message or "") }
end
if ready ~= nil and ready.status == "True" then
  return { status = "Healthy", message = ready.message or "" }
end
if ready ~= nil then
  hs.message = (ready.reason or "") .. ": " .. (ready.message or "")
end
return hs
