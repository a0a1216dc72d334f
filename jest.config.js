/** Tests are TypeScript ESM; kernel tests spawn C programs linked against liblkl.a. */
export default {
  preset: 'ts-jest/presets/default-esm',
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testTimeout: 300000,
  // Kernel tests are heavy on I/O and two cores: run files one after another.
  maxWorkers: 1,
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
};
