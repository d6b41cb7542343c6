/**
 * Stands in for `@azure/functions-core`, the module the Azure Functions Node worker provides
 * at run time. `@azure/functions` requires it lazily by name; once installed, every
 * `app.http / app.storageQueue / app.timer` call lands in this registry with exactly the
 * metadata (`toCoreFunctionMetadata`) the real host would receive.
 */
import Module from 'node:module';

export interface CoreBinding {
  readonly type: string;
  readonly direction: 'in' | 'out' | 'inout';
  readonly name?: string;
  readonly route?: string;
  readonly methods?: readonly string[];
  readonly authLevel?: string;
  readonly queueName?: string;
  readonly connection?: string;
  readonly schedule?: string;
  readonly runOnStartup?: boolean;
  readonly useMonitor?: boolean;
}

export interface CoreFunctionMetadata {
  readonly name: string;
  readonly bindings: Readonly<Record<string, CoreBinding>>;
  readonly retryOptions?: unknown;
}

export type CoreHandler = (...args: unknown[]) => unknown;

export interface RegisteredFunction {
  readonly name: string;
  readonly metadata: CoreFunctionMetadata;
  readonly handler: CoreHandler;
  /** The binding that triggers the function. */
  readonly trigger: CoreBinding;
}

const registered: RegisteredFunction[] = [];
const hooks = new Map<string, CoreHandler[]>();

const disposable = (dispose: () => void) => ({ dispose });

export const functionsCore = {
  registerFunction(metadata: CoreFunctionMetadata, handler: CoreHandler) {
    if (registered.some((f) => f.name === metadata.name))
      throw new Error(`A function named "${metadata.name}" is already registered`);
    const trigger = Object.values(metadata.bindings).find((b) => b.direction === 'in' && b.type.endsWith('Trigger'));
    if (!trigger) throw new Error(`Function "${metadata.name}" has no trigger binding`);
    const entry = { name: metadata.name, metadata, handler, trigger };
    registered.push(entry);
    return disposable(() => registered.splice(registered.indexOf(entry), 1));
  },
  // The programming model matters to the RPC worker, not to a host that calls handlers itself.
  setProgrammingModel: (): void => undefined,
  getProgrammingModel: (): undefined => undefined,
  registerHook(name: string, callback: CoreHandler) {
    hooks.set(name, [...(hooks.get(name) ?? []), callback]);
    return disposable(() =>
      hooks.set(
        name,
        (hooks.get(name) ?? []).filter((c) => c !== callback),
      ),
    );
  },
};

/** Runs the app's `app.hook.appStart` / `appTerminate` callbacks, as the worker does at start and stop. */
export async function runAppHooks(name: 'appStart' | 'appTerminate', functionAppDirectory: string): Promise<void> {
  for (const callback of hooks.get(name) ?? []) await callback({ hookData: {}, appHookData: {}, functionAppDirectory });
}

/** The callbacks registered for a hook, in registration order (the host runs invocation hooks itself). */
export function hookCallbacks(name: string): readonly CoreHandler[] {
  return [...(hooks.get(name) ?? [])];
}

export function registeredFunctions(): readonly RegisteredFunction[] {
  return [...registered];
}

let installed = false;

/** Makes `require('@azure/functions-core')` resolve to the stand-in, as the worker does. */
export function installFunctionsCore(): void {
  if (installed) return;
  installed = true;
  type Load = (this: unknown, request: string, parent: unknown, isMain: boolean) => unknown;
  const loader = Module as unknown as { _load: Load };
  const load = loader._load;
  loader._load = function (request, parent, isMain) {
    return request === '@azure/functions-core' ? functionsCore : load.call(this, request, parent, isMain);
  };
}
