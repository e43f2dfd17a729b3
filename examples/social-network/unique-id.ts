// A post id: time, instance and a counter (unique across this node's instances).
import { defineFunction } from 'baton/sdk';

let counter = 0;
export default defineFunction(() => ({ id: `${Date.now().toString(36)}-${process.pid.toString(36)}-${(counter++).toString(36)}` }));
