#!/bin/sh
# AGENT_EXIT=<code>: exit at once with that code (a crash-looping agent).
# AGENT_ALLOC_MB=<n>: hold n MB in the agent process itself before serving (over the container's memory
# limit, the kernel OOM-kills the agent: Docker reports OOMKilled and exit code 137).
# AGENT_UNHEALTHY=1: serve, but never answer /health (the image's HEALTHCHECK fails: never Ready).
if [ -n "$AGENT_EXIT" ]; then
  echo "agent: exiting with $AGENT_EXIT as asked"
  exit "$AGENT_EXIT"
fi
if [ -n "$AGENT_ALLOC_MB" ]; then
  echo "agent: allocating ${AGENT_ALLOC_MB}MB"
  # The shell (PID 1) reads it all into a variable: the agent process, not a helper, is what grows.
  held=$(head -c "$((AGENT_ALLOC_MB * 1024 * 1024))" /dev/zero | tr '\0' x)
  unset held
fi
echo "agent: serving on :8000"
if [ -n "$AGENT_UNHEALTHY" ]; then
  exec httpd -f -p 8000 -h /www/cgi-bin
fi
exec httpd -f -p 8000 -h /www
