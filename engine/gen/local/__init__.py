"""The local diffusers backend: AI images made on the show machine, no network, no API key.

Each module does one job, and only those that must import torch do:

    presets      the models we know by name; [local] model/tiny_vae → folders        (pure)
    folder       is a folder a loadable SD/SDXL pipeline? one clear line if not        (pure)
    knobs        a GenerationRequest → size, steps, guidance, seeds, strength          (pure)
    status       what the VJ page and the HUD show                                     (pure)
    worker       the one thread that owns the model; jobs by priority                  (no torch of its own)
    generator    LocalGenerator, the Generator seam; errors in the pipeline's terms    (no torch at import)
    device       device and precision, memory in use, out-of-memory recognised        (torch)
    loader       folder → text2img + img2img pipelines on the device                    (torch, diffusers)
    paint        the jobs: one request through a pipeline, output checked             (torch)
    pull         fetch a preset's needed files from the Hub                             (huggingface_hub)
    models_cli   python -m engine models list|pull
"""
