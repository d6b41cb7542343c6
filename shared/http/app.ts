/**
 * The `@azure/functions` app as the function files use it, with one addition: `app.http` also records
 * the route it registers (name, route template, methods, auth level), so GET /api/openapi.json is
 * generated from the registrations themselves. The Node worker loads every file of package.json
 * `main` before the host indexes the functions, so by the time a request arrives the record holds
 * every HTTP function of the app (`AzureFunctionsJobHost__functions` selects functions in the host,
 * after they were all loaded). Defaults are the library's own (@azure/functions src/trigger.ts http:
 * methods GET and POST, authLevel anonymous; route = the function name).
 */
import { app as functionsApp, type HttpFunctionOptions } from '@azure/functions';

export type AuthLevel = 'anonymous' | 'function' | 'admin';

export interface HttpRoute {
  readonly name: string;
  /** The route template as registered, without the host's route prefix, e.g. `jobs/{job_id}`. */
  readonly route: string;
  readonly methods: readonly string[];
  readonly authLevel: AuthLevel;
}

const recorded: HttpRoute[] = [];

/** Every HTTP function this process registered through `app.http`, in registration order. */
export const httpRoutes = (): readonly HttpRoute[] => recorded;

export const app: typeof functionsApp = {
  ...functionsApp,
  http(name: string, options: HttpFunctionOptions): void {
    functionsApp.http(name, options);
    recorded.push(
      Object.freeze({
        name,
        route: options.route ?? name,
        methods: Object.freeze([...(options.methods ?? ['GET', 'POST'])]),
        authLevel: options.authLevel ?? 'anonymous',
      }),
    );
  },
};
