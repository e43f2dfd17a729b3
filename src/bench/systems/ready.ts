// Node's cold-start floor: a process that says it is ready and does nothing else.
process.send!({ ready: true });
setInterval(() => {}, 1 << 30);
