import { startMoto, type Emulator } from '../../local/emulator';

/** A moto server owned by one test file (started in beforeAll, stopped in afterAll). */
export type Moto = Emulator;
export { startMoto };
export const testCredentials = { accessKeyId: 'test', secretAccessKey: 'test' };
