package castore.service;

import java.time.Duration;
import java.util.Map;

/**
 * Settings that apply to any backend. {@code extra} carries provider-specific settings given on
 * the command line (e.g. a cache directory) keyed by option name.
 */
public record StoreOptions(boolean readOnly, Duration timeout, Map<String, String> extra) {
    public static final StoreOptions DEFAULT = new StoreOptions(false, Duration.ofSeconds(5), Map.of());

    public StoreOptions withReadOnly(boolean readOnly) {
        return new StoreOptions(readOnly, timeout, extra);
    }
}
