"""One frame of the show, the same in a window, headless and in tests.

Per frame, on the render thread, never waiting on anything:
1. apply the control commands waiting in the inbox (bounded);
2. take at most one new image from the image queue and write a band of it to
   the GPU (bounded by ``render.upload_mb_per_frame``), and the newest HUD
   picture if one was painted (text is drawn backstage: PIL is too slow here);
   in a frame that wrote no image band, a band of the newest dream frame
   (engine/render/dream.py), only while the dream's mix is above 0;
3. ask the director for the frame plan and draw it;
4. publish a fresh snapshot of the show's state for the other threads.
"""

from __future__ import annotations

import logging
import queue
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path

import moderngl
import numpy as np

from engine.audio.live import LiveAudio
from engine.commands import Action, Command, toggled
from engine.config import Config
from engine.contract import CaptureWish, Inbox, ShaderProblem, ShowSnapshot, StateBoard
from engine.errors import EngineError
from engine.inputs.layer import LiveInputs, is_live, make_sources
from engine.inputs.source import ThreadedSource
from engine.output.hub import OutputHub, recorded_audio
from engine.pacing import FrameStats, FrameTimer
from engine.render.captions import Captions
from engine.render.compositor import Compositor, JoinInfo
from engine.render.dream import DreamLayer, DreamTap
from engine.render.overlay import join_headline
from engine.render.preview import PreviewGrabber
from engine.render.screen_map import ScreenMap
from engine.render.upload import TextureSlots, Uploader
from engine.scenes.deck import SCENE_ACTIONS, SceneDeck
from engine.scenes.stage import ShowStage
from engine.shaders import chain
from engine.shaders.library import ShaderLibrary
from engine.shaders.params import ParamError
from engine.shaders.program import AudioUniforms, FrameInputs, SharedTextures, date_uniform
from engine.show import BeatInfo, Director, FramePlan

log = logging.getLogger(__name__)

MAX_COMMANDS_PER_FRAME = 64
STATS_REFRESH_S = 0.25
DRIVER_ACTIONS = (Action.FULLSCREEN, Action.ESCAPE, Action.QUIT)
PREVIEW_SLACK_S = 0.002  # a preview due a hair after this frame is taken now, not a whole frame late
DREAM_FPS_WINDOW_S = 2.0  # the dream's frames per second, counted over this much of the show's time


class ShowLoop:
    def __init__(
        self,
        ctx: moderngl.Context,
        cfg: Config,
        size: tuple[int, int],
        inbox: Inbox,
        join_url: str,
        board: StateBoard | None = None,
        request_image: Callable[[], None] = lambda: None,
        live: LiveAudio | None = None,
        outputs: OutputHub | None = None,
        sources: Mapping[str, ThreadedSource] | None = None,
    ) -> None:
        self.ctx = ctx
        self.cfg = cfg
        self.inbox = inbox
        self.board = board or StateBoard()
        self.request_image = request_image
        self.live = live
        self.join_url = join_url
        self.errors: deque[str] = deque(maxlen=4)
        self.slots = TextureSlots(ctx, cfg.render.max_image_size, cfg.render.image_slots)
        self.uploader = Uploader(self.slots, int(cfg.render.upload_mb_per_frame * (1 << 20)))
        # Ready images wait in slots: keep two free for current and incoming.
        self.director = Director(
            cfg.show.transition, cfg.show.hold, cfg.show.blackout_fade, max_ready=cfg.render.image_slots - 3,
            transition_on=cfg.show.transition_on, every=cfg.show.transition_beats,
        )
        self.shared = SharedTextures(ctx)
        self.library = ShaderLibrary(ctx, Path(cfg.shaders.dir), self.shared)
        self.library.scan()
        self.compositor = Compositor(ctx, size, self.slots, cfg.show.fit, self.library, self.shared)
        self._choose_start_shaders(cfg)
        self.compositor.set_join(
            JoinInfo(join_url, join_headline(cfg.overlay.headline, cfg.audience.languages), cfg.overlay.qr,
                     cfg.overlay.qr_size)
        )
        self.hud = cfg.overlay.hud
        self.captions = Captions(cfg.overlay)  # each image's words under it, painted backstage
        self.fullscreen = False
        self.frame_index = 0
        self.driver_actions: list[Command] = []
        self.last_plan: FramePlan | None = None
        self.cpu_ms = 0.0  # show-thread CPU per frame outside GL calls, last frame
        self.work_ms = 0.0  # wall time of the last frame's work (GL commands queued, not finished)
        self._timer = FrameTimer()
        self._stats = FrameStats(0.0, 0.0, 0.0)
        self._stats_at = -1.0
        self._last_failure = ""
        self.audio = AudioUniforms()  # the audio thread's latest features (silence until it runs)
        self.audio_line = "no audio"
        self._heard_features: object = None
        self._beats_seen = 0
        self._t0: float | None = None
        self.frozen = False  # the picture held still: show time stops, the blackout still fades
        self._frozen_at = 0.0
        self._paused = 0.0  # wall seconds spent frozen so far
        self._prev: float | None = None
        self._catalog_generation = -1
        self._errors_generation = -1
        self._errors: tuple[ShaderProblem, ...] = ()
        self._catalog_dirty = True
        self.grabber: PreviewGrabber | None = None  # made when a control page first wants a preview
        self._preview_at = float("-inf")  # show wall time of the last grab
        self._preview_failed = False
        self._preview_unwatched = False
        self._urgent_upload = False
        self._band_written = False  # this frame wrote an image band: the dream's upload waits a frame
        self.images_taken = 0  # taken from the inbox since the start (the bridge counts what is still in it)
        # The dream layer: its textures are made now when the dream is on, so its first frame allocates nothing.
        self.dream = DreamLayer(ctx, self.uploader.budget, cfg.dream.size if cfg.dream.enabled else 0)
        self.dream_tap = DreamTap(ctx)
        self.compositor.dream = self.dream
        self.compositor.dream_mix = cfg.dream.mix if cfg.dream.enabled else 0.0  # the VJ may raise it
        self._dream_seen = 0  # the dream slot's sequence number last taken
        self._dream_shown: deque[float] = deque()  # show wall times of the dream frames put on screen lately
        # Program out (NDI, virtual camera, Syphon/Spout, recording) and live video in.
        self.outputs = outputs or OutputHub(ctx, cfg, self.compositor.size, cfg.window.fps or 60.0,
                                            recorded_audio(cfg) if live is not None else None)
        if live is not None:
            live.listeners.append(self.outputs.push_audio)
        self.inputs = LiveInputs(make_sources(cfg.input) if sources is None else sources, self.report)
        self._output_errors = 0  # the hub's errors already reported
        self.screen_map = ScreenMap(ctx, self.report)  # projection mapping ([show] venue); outputs stay unwarped
        if cfg.show.venue:
            self.screen_map.load(cfg.show.venue)
        # Scenes (engine/scenes/): looks in files, recalled with a blend; watched and written on threads of their own.
        self.scenes = SceneDeck(Path(cfg.scenes.dir), cfg.scenes.blend, ShowStage(self))

    def _choose_start_shaders(self, cfg: Config) -> None:
        effects = self.library.effects()
        for name in cfg.shaders.effects:
            if name in effects:
                self.compositor.effects.append(name)
            else:
                self.report(f"shaders.effects: no effect named {name!r} in {cfg.shaders.dir}; skipped")
        name = cfg.shaders.transition
        if name == "crossfade" or name in self.library.transitions():
            self.compositor.transition = name
        else:
            self.report(f"shaders.transition: no transition named {name!r}; using crossfade")

    # --- per frame ------------------------------------------------------------
    def frame(self, now: float, target: moderngl.Framebuffer) -> None:
        """Draw one frame for time ``now`` into ``target``; a failure is reported, never raised.

        The projector keeps its last good picture while the error is on the HUD and in the log.
        """
        start = time.perf_counter()
        try:
            self._frame(now, target)
            self.work_ms = (time.perf_counter() - start) * 1000
        except Exception as err:
            self.frame_index += 1
            message = f"frame failed: {type(err).__name__}: {err}"
            if message != self._last_failure:
                self._last_failure = message
                log.exception("%s", message)
                self.errors.append(message)

    def _frame(self, now: float, target: moderngl.Framebuffer) -> None:
        cpu0 = time.thread_time()
        self._apply_commands(now)
        cpu1 = time.thread_time()
        self._reload_shaders()
        self.scenes.step(now)
        self._feed_upload()
        if self.inputs.step(self.slots, self.director):
            self._band_written = True  # a live frame used this frame's upload: the dream waits
        self._feed_dream(now)
        self._take_hud()
        beat = None if self.frozen else self._listen()
        cpu2 = time.thread_time()
        show_time = self.show_time(now)
        plan = self.director.update(show_time, beat, wall=now)
        for layer in plan.retired:
            self.slots.release(layer.slot)
        self.last_plan = plan
        self.compositor.captions = self.captions.frame(plan, show_time)
        frame = self._frame_inputs(show_time)
        cpu3 = time.thread_time()
        self.dream_tap.answer()  # the dream's source picture grabbed frames ago: nothing waits
        program = self.screen_map.target(target, self.compositor.size)
        self.compositor.render(plan, frame.time, program, frame, self.dream_tap.tap_for(self.compositor.size))
        self._feed_preview(now, program)
        self.outputs.frame(program, self.compositor.size, now, self.frame_index)
        self.screen_map.warp(target, self.compositor.size)
        if len(self.outputs.errors) > self._output_errors:
            self._output_errors = len(self.outputs.errors)
            self.errors.append(self.outputs.errors[-1])
        cpu4 = time.thread_time()
        self._timer.tick(now)
        self.frame_index += 1
        if now - self._stats_at >= STATS_REFRESH_S:
            self._stats = self._timer.stats()
            self._stats_at = now
        self._publish(now)
        self._answer_capture(now)
        if self._catalog_dirty or self.library.generation != self._catalog_generation:
            self._catalog_generation = self.library.generation
            self._catalog_dirty = False
            self.board.publish_catalog(self.library.catalog())
        cpu5 = time.thread_time()
        self.cpu_ms = ((cpu1 - cpu0) + (cpu3 - cpu2) + (cpu5 - cpu4)) * 1000
        self._last_failure = ""

    def show_time(self, now: float) -> float:
        """The clock images, transitions and shaders run on: it stops while the show is frozen."""
        return (self._frozen_at if self.frozen else now) - self._paused

    def _freeze(self, on: bool, now: float) -> None:
        if on == self.frozen:
            return
        if on:
            self._frozen_at = now
        else:
            self._paused += now - self._frozen_at
        self.frozen = on
        log.info("freeze %s", "on" if on else "off")

    def _listen(self) -> BeatInfo | None:
        """The audio thread's latest: shader uniforms, the audio textures, and the beat for the director."""
        if self.live is None:
            return None
        heard = self.live.latest()
        status = heard.status
        f = heard.features
        if f is None:
            self.audio_line = status.detail
            return None
        if f is not self._heard_features:
            self._heard_features = f
            self.audio = f.to_uniforms()
            self.shared.write_audio(f.waveform, f.spectrum)
        bpm = heard.locked_bpm or f.bpm
        tempo = f"{bpm:.1f} bpm" + (" (locked)" if heard.locked_bpm else f" ({f.confidence:.0%})") if bpm else "no beat"
        self.audio_line = f"{status.detail if status.ok else status.detail or 'no audio'}   {tempo}"
        beat = BeatInfo(heard.beats > self._beats_seen, heard.beats, f.bar_beat, 60.0 / bpm if bpm > 0 else 0.0)
        self._beats_seen = heard.beats
        return beat

    def _frame_inputs(self, now: float) -> FrameInputs:
        # Shaders get time since the show started: float32 loses precision on large clock values.
        if self._t0 is None:
            self._t0 = now
        delta = 0.0 if self._prev is None else max(0.0, now - self._prev)
        self._prev = now
        return FrameInputs(now - self._t0, delta, self.frame_index, self.audio, date_uniform())

    def _reload_shaders(self) -> None:
        changed: set[Path] = set()
        while True:
            try:
                changed.add(self.inbox.shader_changes.get_nowait())
            except queue.Empty:
                break
        if changed:
            self.library.apply_changes(changed)

    def _apply_commands(self, now: float) -> None:
        for _ in range(MAX_COMMANDS_PER_FRAME):
            try:
                cmd = self.inbox.commands.get_nowait()
            except queue.Empty:
                return
            self.apply(cmd, now)

    def apply(self, cmd: Command, now: float) -> None:
        """Carry out one command; window-level ones go to the driver."""
        self.scenes.touched(cmd)  # a hand on a control takes it from a scene's blend
        if cmd.action in DRIVER_ACTIONS:
            self.driver_actions.append(cmd)
        elif cmd.action is Action.NEXT:
            if not self.director.request_next():
                self.request_image()
        elif cmd.action is Action.BLACKOUT:
            on = toggled(self.director.blackout_on, cmd.value)
            if on != self.director.blackout_on:
                log.info("blackout %s", "on" if on else "off")
            self.director.set_blackout(on, now)
        elif cmd.action is Action.FREEZE:
            self._freeze(toggled(self.frozen, cmd.value), now)
        elif cmd.action in (Action.TAP, Action.BPM, Action.NUDGE, Action.RESYNC):
            self._tempo(cmd)
        elif cmd.action is Action.HOLD:
            value = cmd.value if isinstance(cmd.value, int | float) else self.cfg.show.hold
            self.director.hold = min(max(0.0, float(value)), 3600.0)
        elif cmd.action is Action.DREAM_MIX:
            mix = cmd.value if isinstance(cmd.value, int | float) else self.cfg.dream.mix
            self.compositor.dream_mix = min(max(0.0, float(mix)), 1.0) if mix == mix else 0.0  # NaN: off
        elif cmd.action is Action.RECORD:
            self.outputs.record(toggled(self.outputs.recorder.recording, cmd.value))
        elif cmd.action is Action.INPUT:
            self.inputs.pick(cmd.name, self.director)
        elif cmd.action in (Action.GRID, Action.MAPPING):
            self.screen_map.command(cmd)
        elif cmd.action is Action.HUD:
            self.hud = toggled(self.hud, cmd.value)
            if not self.hud:
                self.compositor.set_hud(None)
        elif cmd.action is Action.CAPTION:
            self.captions.command(cmd.value, cmd.name)
        elif cmd.action in SCENE_ACTIONS:
            self.scenes.command(cmd, now)
        else:
            self._apply_shader_command(cmd)

    def _tempo(self, cmd: Command) -> None:
        if self.live is None:
            self.report("tempo commands need the audio engine (it is not running)")
            return
        value = cmd.value if isinstance(cmd.value, int | float) else None
        if cmd.action is Action.TAP:
            self.live.tap()
        elif cmd.action is Action.BPM:
            self.live.lock_bpm(value)
        elif cmd.action is Action.NUDGE:
            self.live.nudge(value or 0.0)
        else:
            self.live.resync()

    def _apply_shader_command(self, cmd: Command) -> None:
        comp, lib = self.compositor, self.library
        if cmd.action is Action.EFFECT:
            names = lib.effects()
            name = cmd.name
            if not name and isinstance(cmd.value, int | float) and 1 <= int(cmd.value) <= len(names):
                name = names[int(cmd.value) - 1]
            if name not in names:
                self.report(f"no effect {name or cmd.value!r} (there are {len(names)})")
                return
            comp.effects = chain.toggle(comp.effects, name)
        elif cmd.action is Action.SET_EFFECT:
            if cmd.name and cmd.name not in lib.effects():
                self.report(f"no effect named {cmd.name!r}")
                return
            try:
                comp.effects = chain.set_slot(comp.effects, cmd.slot, cmd.name)
            except ValueError as err:
                self.report(str(err))
                return
        elif cmd.action is Action.CLEAR_EFFECTS:
            comp.effects = []
        elif cmd.action is Action.TRANSITION:
            names = ["crossfade", *lib.transitions()]
            if cmd.name:
                if cmd.name not in names:
                    self.report(f"no transition named {cmd.name!r}")
                    return
                comp.transition = cmd.name
            else:
                step = -1 if isinstance(cmd.value, int | float) and cmd.value < 0 else 1
                comp.transition = chain.cycle(names, comp.transition, step)
        elif cmd.action is Action.PARAM:
            entry = lib.get(cmd.name)
            if entry is None:
                self.report(f"no shader named {cmd.name!r}")
                return
            try:
                entry.params.set(cmd.key, cmd.value)
            except ParamError as err:
                self.report(f"{cmd.name}: {err}")
                return
            self._catalog_dirty = True
            return
        log.info("effects: %s | transition: %s", " > ".join(comp.effects) or "none", comp.transition)

    def _answer_capture(self, now: float) -> None:
        """At most one capture per frame, only when asked: a whole one costs a second draw and a read-back;
        a scaled one (the dream's) is grabbed during the next frame's drawing and answered frames later."""
        try:
            wish: CaptureWish = self.inbox.captures.get_nowait()
        except queue.Empty:
            return
        if wish.longest > 0:
            self.dream_tap.wish(wish.answer, wish.longest, self.compositor.size)
            return
        wanted = wish.answer
        if wanted.set_running_or_notify_cancel():
            try:
                wanted.set_result(self.capture(now))
            except Exception as err:  # the asker hears it; the show goes on
                wanted.set_exception(err)

    def _feed_dream(self, now: float) -> None:
        """The newest dream frame onto the GPU, a band per frame; nothing at all while the mix is 0 or frozen.

        Only in a frame that wrote no image band, so the two never add up past the upload budget; a frame
        that came while another was being written waits in the slot, and only the newest is ever taken.
        """
        if self.compositor.dream_mix <= 0.0 or self.frozen or self._band_written:
            return
        layer = self.dream
        if not layer.busy:
            seq, pixels = self.inbox.dream.latest()
            if seq == self._dream_seen:
                return
            self._dream_seen = seq
            if pixels is None:
                layer.clear()
                return
            try:
                layer.start(pixels)
            except EngineError as err:
                self.report(str(err))
                return
        if layer.step():
            shown = self._dream_shown
            shown.append(now)
            while shown and now - shown[0] > DREAM_FPS_WINDOW_S:
                shown.popleft()

    def dream_fps(self, now: float) -> float:
        """Dream frames put on screen per second over the last couple of seconds (0 when none came lately)."""
        shown = self._dream_shown
        if len(shown) < 2 or now - shown[-1] > DREAM_FPS_WINDOW_S:
            return 0.0
        return (len(shown) - 1) / max(1e-6, shown[-1] - shown[0])

    def _take_hud(self) -> None:
        """Show the newest HUD picture painted backstage (PIL text is too slow for this thread)."""
        latest = None
        while True:
            try:
                latest = self.inbox.hud.get_nowait()
            except queue.Empty:
                break
        if latest is not None and self.hud:
            self.compositor.set_hud(latest)

    def _feed_upload(self) -> None:
        self._band_written = False
        if not self.uploader.busy and self.director.wants_more and self.slots.free_count:
            try:
                image = self.inbox.images.get_nowait()
            except queue.Empty:
                return
            self.images_taken += 1
            try:
                self.uploader.start(image)
            except EngineError as err:
                self.report(str(err))
                return
            self.captions.take(image)
            self._urgent_upload = image.urgent
        if self.uploader.busy:
            self._band_written = True
            layer = self.uploader.step()
            if layer is not None:
                self.director.offer(layer, front=self._urgent_upload)

    def _feed_preview(self, now: float, target: moderngl.Framebuffer) -> None:
        """Every 1/``vj.preview_fps`` s while a control page watches: publish the last grab, queue the next.

        The read-back is asynchronous (engine/render/preview.py): this frame maps the buffer an
        earlier grab filled, then queues its own, so the show never waits on the GPU for it. A
        failure turns the preview off for the rest of the show instead of failing frames.
        """
        fps = self.cfg.vj.preview_fps
        if self._preview_failed or fps <= 0:
            return
        if self.board.preview_viewers <= 0:
            self._preview_unwatched = True  # a grab left waiting is old by the time someone watches again
            return
        if now - self._preview_at < 1.0 / fps - PREVIEW_SLACK_S:
            return
        self._preview_at = now
        try:
            if self.grabber is None:
                self.grabber = PreviewGrabber(self.ctx, self.cfg.vj.preview_width)
            pixels = self.grabber.poll()
            if pixels is not None and not self._preview_unwatched:
                self.board.publish_preview(pixels)
            self._preview_unwatched = False
            self.grabber.grab(target, self.compositor.size)
        except Exception as err:
            self._preview_failed = True
            self.report(f"preview turned off for this show: {type(err).__name__}: {err}")

    def report(self, message: str) -> None:
        """An error the VJ should see: logged, and on the HUD until newer ones push it out."""
        log.error("%s", message)
        self.errors.append(message)

    # --- state out ------------------------------------------------------------
    @property
    def queue_len(self) -> int:
        return self.inbox.images.qsize() + int(self.uploader.busy) + self.director.ready_count

    def held_ids(self) -> tuple[str, ...]:
        """The images the show has taken from its inbox and not yet let go (a restarted backstage needs them)."""
        uploading = self.uploader.image_id
        held = tuple(i for i in self.director.held_ids() if not is_live(i))
        return (*held, uploading) if uploading is not None else held

    def _publish(self, now: float) -> None:
        d = self.director
        s = self._stats
        self.board.publish(
            ShowSnapshot(
                frame=self.frame_index,
                time=now,
                fps=s.fps,
                frame_ms=s.frame_ms,
                frame_p99_ms=s.p99_ms,
                work_ms=self.work_ms,
                cpu_ms=self.cpu_ms,
                current_id=d.current.id if d.current else None,
                incoming_id=d.incoming.id if d.incoming else None,
                queue_len=self.queue_len,
                blackout=d.blackout_on,
                frozen=self.frozen,
                hud=self.hud,
                fullscreen=self.fullscreen,
                size=self.compositor.size,
                errors=tuple(self.errors),
                effects=tuple(self.compositor.effects),
                transition=self.compositor.transition,
                shader_errors=self._shader_errors(),
                audio=self.audio_line,
                held=self.held_ids(),
                taken=self.images_taken,
                dream_mix=self.compositor.dream_mix,
                dream_fps=self.dream_fps(now),
                outputs=self.outputs.states(),
                inputs=self.inputs.states(),
                live_input=self.inputs.active,
                scenes=self.scenes.infos(),
                scene=self.scenes.recalled,
                scene_seq=self.scenes.seq,
                scene_style=self.scenes.style,
                caption=self.captions.text,
                caption_hidden=self.captions.text_hidden,
                **self.screen_map.snapshot_fields(),
            )
        )

    def _shader_errors(self) -> tuple[ShaderProblem, ...]:
        """The library's errors, rebuilt only when the library changed (not every frame)."""
        if self._errors_generation != self.library.generation:
            self._errors_generation = self.library.generation
            self._errors = tuple(ShaderProblem(e.file, e.line, e.message) for e in self.library.errors())
        return self._errors

    # --- output ---------------------------------------------------------------
    def capture(self, now: float) -> np.ndarray:
        """Draw the current plan into an offscreen buffer and return it as RGB rows, top first."""
        w, h = self.compositor.size
        fb = self.ctx.framebuffer(color_attachments=[self.ctx.texture((w, h), 4)])
        try:
            plan = self.last_plan or self.director.update(self.show_time(now), wall=now)
            self.compositor.render(plan, self.show_time(now), fb)
            return read_rgb(fb, (w, h))
        finally:
            fb.color_attachments[0].release()
            fb.release()

    def release(self) -> None:
        self.scenes.close()  # saves already asked for are written first
        self.outputs.close()  # finalises a recording: the file is whole when the show ends (SIGTERM too)
        self.screen_map.release()
        self.inputs.close()
        if self.grabber is not None:
            self.grabber.release()
        self.dream_tap.release()
        self.dream.release()
        self.compositor.release()
        self.library.release()
        self.shared.release()
        self.slots.release_all()


def read_rgb(fb: moderngl.Framebuffer, size: tuple[int, int]) -> np.ndarray:
    """A framebuffer's pixels as an (h, w, 3) uint8 array, top row first."""
    w, h = size
    data = np.frombuffer(fb.read(viewport=(0, 0, w, h), components=3), dtype=np.uint8)
    return data.reshape(h, w, 3)[::-1].copy()
