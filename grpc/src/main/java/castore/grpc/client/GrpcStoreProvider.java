package castore.grpc.client;

import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.StoreProvider;
import java.io.IOException;
import java.net.URI;
import java.util.List;
import java.util.Set;

/**
 * {@code grpc+http://host:port}, {@code grpc+https://host:port[?ca=/path/ca.pem]} and
 * {@code grpc+unix:///path}: the three services of a castore daemon (or blobs and directories of a
 * tvix one) over one channel. Closing the store closes the channel.
 */
public final class GrpcStoreProvider implements StoreProvider {
    @Override
    public Set<String> schemes() {
        return Set.of("grpc+http", "grpc+https", "grpc+unix");
    }

    @Override
    public Store open(URI address, StoreOptions options) throws IOException {
        Connection connection = Connection.open(address, options);
        var blobs = new RemoteBlobService(connection);
        var directories = new RemoteDirectoryService(connection);
        var roots = new RemoteRootService(connection);
        // GrpcWarmUp: the client's per-call path, run by a mount while idle (on a server of its own).
        return new Store(blobs, directories, roots, List.of(roots, directories, blobs, connection, new GrpcWarmUp()));
    }
}
