package castore.service;

import java.io.IOException;
import java.net.URI;
import java.util.Set;

/**
 * A backend family chosen by address scheme (memory, local, grpc+http, s3, ...). Backends in
 * other modules register through {@link java.util.ServiceLoader}
 * ({@code META-INF/services/castore.service.StoreProvider}); core knows none of them.
 */
public interface StoreProvider {

    /** URI schemes handled, e.g. {@code memory}, {@code local}. */
    Set<String> schemes();

    /** Opens all three services at {@code address}. */
    Store open(URI address, StoreOptions options) throws IOException;
}
