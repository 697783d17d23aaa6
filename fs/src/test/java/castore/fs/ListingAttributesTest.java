package castore.fs;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class ListingAttributesTest {
    private final AtomicLong now = new AtomicLong(-5_000);
    private final ListingAttributes attributes = new ListingAttributes(now::get, 1_000);

    @Test
    void offUntilABareNameIsLookedUpThenOnForTheWindow() {
        assertThat(attributes.filesWanted()).isFalse();
        attributes.bareNameLookedUp();
        assertThat(attributes.filesWanted()).isTrue();
        now.addAndGet(999);
        assertThat(attributes.filesWanted()).isTrue();
        now.addAndGet(1);
        assertThat(attributes.filesWanted()).as("the window is over").isFalse();
    }

    @Test
    void moreLookupsExtendTheWindow() {
        attributes.bareNameLookedUp();
        now.addAndGet(400);
        attributes.bareNameLookedUp(); // under half the window gone: not rewritten
        now.addAndGet(200);
        attributes.bareNameLookedUp(); // over half gone: extended to 600 + 1000
        now.addAndGet(999);
        assertThat(attributes.filesWanted()).isTrue();
        now.addAndGet(1);
        assertThat(attributes.filesWanted()).isFalse();
    }

    @Test
    void theClockMayStartNegativeOrWrap() {
        var wrapping = new ListingAttributes(() -> Long.MAX_VALUE - 10, 1_000);
        assertThat(wrapping.filesWanted()).isFalse();
        wrapping.bareNameLookedUp();
        assertThat(wrapping.filesWanted()).isTrue();
    }
}
