trap '' PIPE
fds=()
for i in $(seq 1000); do exec {fd}<>/dev/tcp/127.0.0.1/ || break; printf 'GET /healthz HTTP/1.1\r\nX-Slow: ' >&$fd 2>/dev/null; fds+=($fd); done
echo ${#fds[@]}
start=$SECONDS
while [ $((SECONDS - start)) -lt 30 ]; do closed=0
for fd in "${fds[@]}"; do if read -t 0 -u $fd; then closed=$((closed + 1)); else printf a >&$fd 2>/dev/null; fi; done
echo "$((SECONDS - start)) $closed"; [ $closed -eq ${#fds[@]} ] && break; sleep 2; done
