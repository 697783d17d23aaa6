package castore.service.cache;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.service.CorruptedDataException;
import java.io.IOException;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

class SingleFlightTest {
    private final SingleFlight<String, byte[]> flights = new SingleFlight<>();

    @Test
    void aClaimCompletedWithoutAValueSendsItsWaitersToLookAgain() throws Exception {
        CompletableFuture<byte[]> claim = flights.claim("k");
        assertThat(flights.claim("k")).as("one claim at a time").isNull();
        var waiter = CompletableFuture.supplyAsync(() -> {
            try {
                return flights.get("k", () -> new byte[] {9});
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        while (claim.getNumberOfDependents() == 0) { // the waiter blocks on the claim
            Thread.onSpinWait();
        }
        flights.complete("k", claim, null);
        assertThat(SingleFlight.awaitClaim(claim)).isTrue();
        assertThat(waiter.get()).as("the claim's waiter gets no array").isNull();
        assertThat(flights.isLoading("k")).isFalse();
        assertThat(flights.get("k", () -> new byte[] {9})).as("a later caller loads it").containsExactly(9);
    }

    @Test
    void awaitingAClaimTellsAGiveUpFromAFailure() {
        CompletableFuture<byte[]> released = flights.claim("a");
        flights.release("a", released);
        assertThat(catchAwait(released)).isFalse();

        CompletableFuture<byte[]> failed = flights.claim("b");
        flights.fail("b", failed, new CorruptedDataException("chunk does not match its digest"));
        assertThatThrownBy(() -> SingleFlight.awaitClaim(failed)).isInstanceOf(CorruptedDataException.class)
                .hasMessageContaining("does not match");
    }

    private static boolean catchAwait(CompletableFuture<byte[]> claim) {
        try {
            return SingleFlight.awaitClaim(claim);
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }
}
