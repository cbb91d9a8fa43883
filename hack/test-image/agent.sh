#!/bin/sh
# AGENT_EXIT=<code>: exit at once with that code (a crash-looping agent).
# AGENT_ALLOC_MB=<n>: grow memory until killed (an OOM-killed agent).
if [ -n "$AGENT_EXIT" ]; then
  echo "agent: exiting with $AGENT_EXIT as asked"
  exit "$AGENT_EXIT"
fi
if [ -n "$AGENT_ALLOC_MB" ]; then
  echo "agent: allocating ${AGENT_ALLOC_MB}MB"
  # tail buffers its whole input when asked for the last line of a file with no newline.
  head -c "$((AGENT_ALLOC_MB * 1024 * 1024))" /dev/zero | tail -c 1 >/dev/null
fi
echo "agent: serving on :8000"
exec httpd -f -p 8000 -h /www
