/**
 * The `images` container: GET /api/images, GET /api/images/{name}, GET /api/images/{name}/info
 * and PUT /api/images/{name} (function key; whole, accepted images only; 409 when the name
 * is taken unless ?overwrite=true); DELETE /api/images/{name} (admin: the master key; 204, or 404
 * when missing; results are kept, and a task that later reads the image fails with image_not_found).
 * A name outside letters, digits, `.`, `_`, `-` (an undecodable escape such as `%zz` included) → 400
 * naming `name`.
 */
import { app } from '../shared/http/app';
import { imageRoutes } from '../shared/http/images';
import { httpStorage } from '../shared/storage/clients';

const routes = imageRoutes(httpStorage);

app.http('listImages', { route: 'images', methods: ['GET'], authLevel: 'function', handler: routes.listImages });
app.http('putImage', { route: 'images/{name}', methods: ['PUT'], authLevel: 'function', handler: routes.putImage });
app.http('getImage', { route: 'images/{name}', methods: ['GET'], authLevel: 'function', handler: routes.getImage });
app.http('getImageInfo', {
  route: 'images/{name}/info',
  methods: ['GET'],
  authLevel: 'function',
  handler: routes.getImageInfo,
});
app.http('deleteImage', {
  route: 'images/{name}',
  methods: ['DELETE'],
  authLevel: 'admin',
  handler: routes.deleteImage,
});
