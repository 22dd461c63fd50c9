"""The Gradio app, one concept a module (`app.py` at the repository root is the entry point).

    settings.py      the environment's settings and the model store all sessions share
    messages.py      toasts and the notice box
    wiring.py        events wired by parameter name (inputs_for)
    session.py       a session's run: streamed, rewound, replayed (Run)
    controls.py      the sampler's knobs, at a model's defaults
    describe.py      what the app says and draws about a model
    generate_tab.py  the Generate tab: generate, branch, and its layout and events
    drive.py         ... its controls for driving a run by hand: layout, events, keyboard and clicks
    hand.py          ... their handlers: hold, next step, continue, reveal by hand, edit, diff, trajectory
    export.py        the last run as GIF / MP4 / heatmap
    forward_tab.py   the Forward process tab
    compare_tab.py   the Compare tab
    model_tab.py     the Model tab: load another checkpoint, the figures
    demo.py          build_demo: the tabs put together

Each tab module builds its components and wires its events beside them; the sampler is
`microdllm.sampling.denoise`, models are loaded and served by `microdllm.serving`, pictures drawn
by `microdllm.render`, and what a visitor typed is checked by `microdllm.inputs`.
"""
