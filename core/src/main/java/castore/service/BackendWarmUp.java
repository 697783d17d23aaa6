package castore.service;

import java.util.function.BooleanSupplier;

/**
 * A backend that can run its own request path on synthetic data, so that a long-lived process (a
 * mount, while idle) has that code loaded and compiled before real requests need it. It never
 * touches the store's real data, and needs nothing beyond the process (no network, no disk).
 */
public interface BackendWarmUp {
    /** Runs the backend's request path until done, or until {@code stop} answers true; throws what failed. */
    void warmUp(BooleanSupplier stop) throws Exception;
}
