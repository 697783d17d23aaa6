package castore.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.service.Store;
import castore.service.cache.StoreCache;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --cache-memory}: the memory tier a remote store's cache gets, and the heap it must fit;
 * {@code --timeout}: how long a remote store may keep an operation waiting.
 */
class StoreMixinTest {
    @TempDir
    Path tmp;

    private static StoreMixin withCacheMemory(String size) {
        var options = new StoreMixin();
        options.cacheMemory = size;
        return options;
    }

    @Test
    void theDefaultIs256MiBOrAQuarterOfASmallerHeap() {
        assertThat(withCacheMemory(null).memoryLimit(6L << 30)).isEqualTo(256L << 20);
        assertThat(withCacheMemory(null).memoryLimit(1L << 30)).isEqualTo(256L << 20);
        assertThat(withCacheMemory(null).memoryLimit(160L << 20)).isEqualTo(40L << 20);
    }

    @Test
    void aSizeGivenIsTakenAsItIsUpToAQuarterOfTheHeap() {
        assertThat(withCacheMemory("32M").memoryLimit(160L << 20)).isEqualTo(32L << 20);
        assertThat(withCacheMemory("40M").memoryLimit(160L << 20)).isEqualTo(40L << 20);
        assertThat(withCacheMemory("1G").memoryLimit(6L << 30)).isEqualTo(1L << 30);
    }

    @Test
    void aSizeThatDoesNotFitTheHeapOrDoesNotParseIsABadCommandLine() {
        assertThatThrownBy(() -> withCacheMemory("41M").memoryLimit(160L << 20))
                .isInstanceOfSatisfying(CliException.class, e -> assertThat(e.exitCode()).isEqualTo(ExitCodes.USAGE))
                .hasMessage("--cache-memory 41M is more than a quarter of the heap (160.0 MiB): give at most 40M, "
                        + "or a larger heap (CASTORE_JAVA_OPTS=-Xmx...)");
        assertThatThrownBy(() -> withCacheMemory("0").memoryLimit(6L << 30))
                .isInstanceOfSatisfying(CliException.class, e -> assertThat(e.exitCode()).isEqualTo(ExitCodes.USAGE))
                .hasMessage("--cache-memory: invalid size '0': expected a positive number with an optional K, M, G or T suffix");
    }

    @Test
    void theCacheOfTheStoreOpenedHasTheMemoryTierGiven() throws Exception {
        var options = withCacheMemory("8M");
        options.store = "memory://";
        options.cache = tmp.resolve("cache");
        try (Store store = options.openReadOnly()) {
            assertThat(StoreCache.configOf(store).orElseThrow().memoryLimit()).isEqualTo(8L << 20);
        }
        options.cacheMemory = null;
        try (Store store = options.openReadOnly()) {
            assertThat(StoreCache.configOf(store).orElseThrow().memoryLimit())
                    .isEqualTo(Math.min(256L << 20, Runtime.getRuntime().maxMemory() / 4));
        }
    }

    @Test
    void theCommandLineSaysWhatDoesNotFit() {
        var result = new Cli(tmp.resolve("store").toString()).run("roots", "--cache-memory",
                (Runtime.getRuntime().maxMemory() / 4 + (2 << 20) >> 20) + "M");
        assertThat(result.exit()).isEqualTo(ExitCodes.USAGE);
        assertThat(result.stderr()).contains("is more than a quarter of the heap");
    }

    private static StoreMixin withTimeout(String duration) {
        var options = new StoreMixin();
        options.timeout = duration;
        return options;
    }

    @Test
    void theTimeoutIsFiveSecondsUnlessGivenInMillisecondsSecondsOrMinutes() {
        assertThat(withTimeout(null).timeout()).isEqualTo(java.time.Duration.ofSeconds(5));
        assertThat(withTimeout("500ms").timeout()).isEqualTo(java.time.Duration.ofMillis(500));
        assertThat(withTimeout("30s").timeout()).isEqualTo(java.time.Duration.ofSeconds(30));
        assertThat(withTimeout("7").timeout()).as("a bare number is seconds").isEqualTo(java.time.Duration.ofSeconds(7));
        assertThat(withTimeout("2m").timeout()).isEqualTo(java.time.Duration.ofMinutes(2));
        assertThat(withTimeout("60m").timeout()).isEqualTo(java.time.Duration.ofHours(1));
    }

    @Test
    void aTimeoutThatIsZeroTooLongOrNotADurationIsABadCommandLine() {
        for (String bad : new String[] {"0", "0ms", "61m", "2h", "-1s", "5 s", "fast", ""}) {
            assertThatThrownBy(() -> withTimeout(bad).timeout()).as(bad)
                    .isInstanceOfSatisfying(CliException.class, e -> assertThat(e.exitCode()).isEqualTo(ExitCodes.USAGE))
                    .hasMessage("--timeout: invalid duration '" + bad + "': expected a number of milliseconds, seconds or minutes "
                            + "(e.g. 500ms, 5s, 2m), more than 0 and at most 60m");
        }
    }

    /** The timeout given is the one a remote store's operations wait: here for a daemon nobody serves. */
    @Test
    void aCommandOnADaemonNobodyServesFailsAfterTheTimeoutGiven() throws Exception {
        int port;
        try (var socket = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            port = socket.getLocalPort(); // closed again: nothing listens there
        }
        String address = "grpc+http://127.0.0.1:" + port;
        Cli.Result roots = Cli.raw("roots", "--store", address, "--timeout", "1500ms");
        assertThat(roots.exit()).as(roots.stderr()).isEqualTo(ExitCodes.IO);
        assertThat(roots.stderr()).contains(address).contains("could not be reached within 1500 ms");
        Cli.Result bad = Cli.raw("roots", "--store", address, "--timeout", "never");
        assertThat(bad.exit()).isEqualTo(ExitCodes.USAGE);
        assertThat(bad.stderr()).contains("--timeout: invalid duration 'never'");
    }
}
