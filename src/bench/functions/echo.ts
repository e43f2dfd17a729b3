// A trivial chain function for the bench: passes the payload on in place.
import { defineFunction } from 'baton/sdk';

export default defineFunction(() => undefined);
