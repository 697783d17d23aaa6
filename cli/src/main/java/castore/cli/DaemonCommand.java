package castore.cli;

import castore.grpc.ListenAddress;
import castore.grpc.server.CastoreServer;
import castore.grpc.server.Daemon;
import castore.service.Store;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Serves the store over gRPC (tvix-compatible BlobService and DirectoryService, castore RootService). */
@Command(name = "daemon", mixinStandardHelpOptions = true, description = {
    // One element: the command list shows the first one alone.
    "Serve the store over gRPC until SIGTERM or SIGINT: tvix.castore.v1 BlobService and DirectoryService,"
        + " castore.v1 RootService and ChunkedBlobService. Clients use --store grpc+http://HOST:PORT,"
        + " grpc+https://HOST:PORT or grpc+unix:///PATH. Calls in flight finish before it exits."})
final class DaemonCommand implements Callable<Integer> {
    @Mixin
    StoreMixin store;

    @Option(names = "--listen", paramLabel = "ADDR", defaultValue = "127.0.0.1:8000",
            description = "127.0.0.1:PORT, [::1]:PORT, HOST:PORT or unix:///PATH (socket mode 0600). Default: ${DEFAULT-VALUE}.")
    String listen;

    @Option(names = "--read-only", description = "Refuse every write (PERMISSION_DENIED): for clients you do not trust.")
    boolean readOnly;

    @Option(names = "--tls-cert", paramLabel = "FILE", description = "PEM certificate chain; serve TLS (clients use grpc+https://).")
    Path tlsCert;

    @Option(names = "--tls-key", paramLabel = "FILE", description = "PEM private key (PKCS#8) for --tls-cert.")
    Path tlsKey;

    @Option(names = "--max-closure", paramLabel = "SIZE", defaultValue = "512M",
            description = "Most bytes of encoded Directories held in memory for one closure put, e.g. 64M"
                    + " (default: ${DEFAULT-VALUE}). A tvix client's closure must fit; castore clients put larger"
                    + " closures in parts of at most this size.")
    String maxClosure = "512M";

    @Override
    public Integer call() throws Exception {
        ListenAddress address = ListenAddress.parse(listen);
        long maxClosureBytes;
        try {
            maxClosureBytes = castore.service.cache.CacheConfig.parseSize(maxClosure);
        } catch (castore.model.InvalidDataException e) {
            throw new CliException(ExitCodes.USAGE, "--max-closure: " + e.getMessage());
        }
        if ((tlsCert == null) != (tlsKey == null)) {
            throw new CliException(ExitCodes.USAGE, "--tls-cert and --tls-key go together");
        }
        for (Path p : new Path[] {tlsCert, tlsKey}) {
            if (p != null) {
                requireReadable(p);
            }
        }
        // Before the store is opened: a certificate or key that does not parse is refused here (exit 4).
        var config = new CastoreServer.Config(address, readOnly, tlsCert, tlsKey, maxClosureBytes);
        // A writable daemon creates a missing local store (clients import into it); a read-only one needs one.
        Store opened = store.open(castore.service.StoreOptions.DEFAULT.withReadOnly(readOnly).withCreateIfMissing(!readOnly));
        Daemon.serve(opened, config, Daemon.DEFAULT_GRACE, store.storeAddress(), System.err);
        return ExitCodes.OK;
    }

    /** A TLS file opened once here, so that the error says why it cannot be read. */
    private static void requireReadable(Path p) {
        try (var in = Files.newInputStream(p)) {
            in.read();
        } catch (java.nio.file.NoSuchFileException e) {
            throw new CliException(ExitCodes.NOT_FOUND, "cannot read " + p + ": no such file");
        } catch (java.nio.file.AccessDeniedException e) {
            throw new CliException(ExitCodes.NOT_FOUND, "cannot read " + p + ": permission denied");
        } catch (java.io.IOException e) {
            throw new CliException(ExitCodes.NOT_FOUND, "cannot read " + p + ": " + e.getMessage());
        }
    }
}
